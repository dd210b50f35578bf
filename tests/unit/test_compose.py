"""docker-compose.yml is checked by parsing (no Docker engine runs here)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LAUNCHER_COMMANDS = {"api", "worker", "migrate", "up", "ray"}


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
    for role in ("api", "worker"):
        assert SERVICES[role]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_commands_name_real_launcher_subcommands_and_modules():
    from core.cli import build_parser

    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for name, service in SERVICES.items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "etp-server":
            assert command[1] in subcommands & LAUNCHER_COMMANDS, name
    assert SERVICES["ray-head"]["command"][:2] == ["ray", "start"]


def test_every_etp_variable_in_compose_is_a_real_setting():
    from dataclasses import fields

    from core.settings import Settings

    known = {"ETP_" + f.name.upper() for f in fields(Settings)}
    env = COMPOSE["x-etp-env"]
    assert {k for k in env if k.startswith("ETP_")} <= known


def test_dockerfile_copies_every_server_package():
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    for package in ("core", "api", "actors", "workers", "migrations"):
        assert f"COPY {package}/ {package}/" in dockerfile
