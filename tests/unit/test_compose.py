"""docker-compose.yml is checked by parsing (no Docker engine runs here).

tests/unit/test_deploy_manifests.py checks what compose shares with the other deployments
(images, command lines, settings, metrics); this module checks the stack's own shape.
"""

from pathlib import Path

import yaml

from tests.unit.test_deploy_manifests import shell_invocations

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LAUNCHER_COMMANDS = {"api", "worker", "migrate", "up", "ray"}
CORE_SERVICES = {"postgres", "redis", "ray-head", "migrate", "api", "worker", "nginx"}


def test_every_service_has_an_image_or_a_build_whose_dockerfile_exists():
    built_images = {s["image"] for s in SERVICES.values() if "build" in s and "image" in s}
    for name, service in SERVICES.items():
        if "build" in service:
            dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
            assert dockerfile.is_file(), name
        else:
            image = service["image"]
            assert image in built_images or ":" in image, f"{name}: image {image!r} unpinned"


def test_dependencies_exist_and_migrate_runs_before_api_and_worker():
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            assert not SERVICES[dependency].get("profiles") or service.get("profiles"), (
                f"{name} would need an optional service ({dependency})"
            )
    for role in ("api", "worker"):
        assert SERVICES[role]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_commands_name_real_launcher_subcommands_and_modules():
    from core.cli import build_parser

    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    subcommands = set(choices or ())
    roles = {}
    for name, service in SERVICES.items():
        for argv in shell_invocations(service.get("command")):
            if argv[0] == "etp-server":
                assert argv[1] in subcommands & LAUNCHER_COMMANDS, name
                roles[name] = argv[1]
    assert roles == {"migrate": "migrate", "api": "api", "worker": "worker"}
    assert SERVICES["ray-head"]["command"][:2] == ["ray", "start"]
    assert SERVICES["ray-worker"]["command"][:3] == ["ray", "start", "--address=ray-head:6379"]


def test_every_etp_variable_in_compose_is_a_real_setting():
    from dataclasses import fields

    from core.jobs import WorkerConfig
    from core.settings import Settings

    known = {"ETP_" + f.name.upper() for f in (*fields(Settings), *fields(WorkerConfig))}
    environments = [COMPOSE["x-etp-env"]] + [
        s["environment"] for s in SERVICES.values() if isinstance(s.get("environment"), dict)
    ]
    for env in environments:
        assert {k for k in env if k.startswith("ETP_")} <= known


def test_dockerfile_copies_every_server_package():
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    for package in ("core", "api", "actors", "workers", "migrations"):
        assert f"COPY {package}/ {package}/" in dockerfile


def test_plain_docker_compose_up_runs_the_whole_stack_and_extras_are_profiles():
    assert {n for n, s in SERVICES.items() if not s.get("profiles")} == CORE_SERVICES
    assert SERVICES["ray-worker"]["profiles"] == ["scale"]
    assert SERVICES["prometheus"]["profiles"] == ["observability"]
    assert SERVICES["grafana"]["profiles"] == ["observability"]


def test_the_api_runs_as_replicas_behind_nginx_with_tls_on_8443():
    api = SERVICES["api"]
    assert api["deploy"]["replicas"] >= 2
    assert "ports" not in api, "replicas cannot share a host port: nginx is the entry point"
    assert api["expose"] == ["8000"]
    nginx = SERVICES["nginx"]
    assert "8443:8443" in nginx["ports"]
    # The plain listener is for clients on the Docker host only.
    plain = [p for p in nginx["ports"] if p.endswith(":8000")]
    assert plain == ["127.0.0.1:8000:8000"]
    # An https base URL makes the session and CSRF cookies __Host- and Secure.
    assert COMPOSE["x-etp-env"]["ETP_BASE_URL"] == "${ETP_BASE_URL:-https://localhost:8443}"


def test_replicas_and_the_worker_share_one_data_directory():
    data_dir = COMPOSE["x-etp-env"]["ETP_DATA_DIR"]
    for role in ("api", "worker"):
        assert f"etp-data:{data_dir}" in SERVICES[role]["volumes"], role


def test_every_ray_node_and_driver_shares_the_token_and_a_second_node_joins_the_head():
    for name in ("ray-head", "ray-worker", "migrate", "api", "worker"):
        env = SERVICES[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN"] == COMPOSE["x-etp-env"]["RAY_AUTH_TOKEN"], name
    worker_node = SERVICES["ray-worker"]
    assert worker_node["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "--block" in worker_node["command"]


def test_mounts_exist_and_named_volumes_are_declared():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in COMPOSE["volumes"], f"{name}: volume {source} undeclared"


def test_observability_ports_stay_on_the_loopback_interface():
    for name in ("prometheus", "grafana"):
        for port in SERVICES[name]["ports"]:
            assert port.startswith("127.0.0.1:"), name
