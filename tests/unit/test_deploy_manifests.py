"""deploy/ and docker-compose.yml, checked by parsing (no Docker engine or Kubernetes here).

What a deployment refers to must exist: images are built here or pinned, every ``etp-server``
and ``ray start`` command line parses with the real parsers, every ``ETP_*`` variable is a real
setting (and the shipped values load), probes and scrape paths are real routes, and every metric
a dashboard or an alert uses is defined in the code (or by Ray, Prometheus, the kubelet).
Files under a ``pending/`` directory hold panels and rules on metrics not wired yet: they must
parse, but their metric names are not checked and nothing loads them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import shlex
import tomllib
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OWNED_DIRS = ("kuberay", "grafana", "prometheus", "nginx", "docker")
KUBERAY = DEPLOY / "kuberay"
COMPOSE_PATH = ROOT / "docker-compose.yml"
SERVER_PACKAGES = ("core", "api", "actors", "workers")
PROJECT_IMAGE = "etp-server"


def _load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _deploy_files(*suffixes: str) -> list[Path]:
    return sorted(
        path
        for directory in OWNED_DIRS
        for path in (DEPLOY / directory).rglob("*")
        if path.is_file() and path.name.endswith(suffixes)
    )


def _is_pending(path: Path) -> bool:
    return "pending" in path.relative_to(DEPLOY).parts


COMPOSE = yaml.safe_load(COMPOSE_PATH.read_text())
KUSTOMIZATION = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
# What `kubectl apply -k deploy/kuberay` applies, and the Secrets an operator creates first.
K8S = [doc for name in KUSTOMIZATION["resources"] for doc in _load_yaml_documents(KUBERAY / name)]
SECRETS = {
    doc["metadata"]["name"]: doc for doc in _load_yaml_documents(KUBERAY / "secrets.example.yaml")
}
PROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in K8S if doc.get("kind") == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in _of_kind(kind) if doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def _pod_templates() -> list[tuple[str, dict[str, Any]]]:
    """(owner, pod template) of every workload, RayCluster groups included."""
    found = []
    for doc in K8S:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            found.append((name, doc["spec"]["template"]))
        elif doc["kind"] == "RayCluster":
            found.append((f"{name}/head", doc["spec"]["headGroupSpec"]["template"]))
            for group in doc["spec"]["workerGroupSpecs"]:
                found.append((f"{name}/{group['groupName']}", group["template"]))
    return found


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{owner}/{container['name']}", container)
        for owner, template in _pod_templates()
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]
    ]


def shell_invocations(command: Any, args: Any = None) -> list[list[str]]:
    """The programs a container command runs: ``sh -c`` scripts are split at ``&&``, ``||``,
    ``;`` and newlines, a leading ``exec`` is dropped and compose's ``$$`` becomes ``$``."""
    if command is None:
        return []
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    argv += [str(a) for a in args or []]
    if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and argv[1] == "-c":
        script = argv[2].replace("$$", "$")
        found = []
        for part in re.split(r"&&|\|\||;|\n", script):
            words = shlex.split(part)
            if words and words[0] == "exec":
                words = words[1:]
            if words:
                found.append(words)
        return found
    return [argv]


def _all_invocations() -> list[tuple[str, list[str]]]:
    found = [
        (f"compose/{name}", argv)
        for name, service in COMPOSE["services"].items()
        for argv in shell_invocations(service.get("command"))
    ]
    for owner, container in _containers():
        found += [
            (owner, argv)
            for argv in shell_invocations(container.get("command"), container.get("args"))
        ]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            found += [(f"{owner}/{probe}", argv) for argv in shell_invocations(command)]
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        found += [(f"{owner}/preStop", argv) for argv in shell_invocations(pre_stop.get("command"))]
    for name, service in COMPOSE["services"].items():
        test = service.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            found.append((f"compose/{name}/healthcheck", test[1:]))
    return found


@cache
def _ray_start_options() -> frozenset[str]:
    from ray.scripts.scripts import start

    options: set[str] = set()
    for param in start.params:
        options.update(param.opts)
        options.update(param.secondary_opts)
    return frozenset(options)


@cache
def _app_routes() -> frozenset[str]:
    from api.app import create_app
    from core.settings import Secret, Settings

    app = create_app(Settings(mode="test", secret_key=Secret("x" * 40)), connect_dependencies=False)
    return frozenset(rule.rule for rule in app.url_map.iter_rules())


# Files parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", _deploy_files(".yml", ".yaml"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_yaml_file_under_deploy_parses(path):
    assert _load_yaml_documents(path), f"{path} is empty"


@pytest.mark.parametrize("path", _deploy_files(".json"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_json_file_under_deploy_parses(path):
    assert isinstance(json.loads(path.read_text()), dict)


def test_every_kubernetes_object_has_a_kind_a_name_and_the_part_of_label():
    assert K8S, "no manifests in deploy/kuberay"
    names = set()
    for doc in [*K8S, *SECRETS.values()]:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in names, f"{key} defined twice"
        names.add(key)
        assert doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "etp", key


def test_kustomization_lists_every_manifest_but_the_secret_example():
    listed = set(KUSTOMIZATION["resources"])
    present = {p.name for p in KUBERAY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secrets.example.yaml"}
    assert KUSTOMIZATION["namespace"] == "etp"
    assert not _of_kind("Secret"), "real secrets never live in the repository"


# Images ---------------------------------------------------------------------------------------


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_every_kubernetes_image_is_the_project_image_at_its_version_or_pinned():
    for owner, container in _containers():
        image = container["image"]
        if image.split(":")[0] == PROJECT_IMAGE:
            assert image == f"{PROJECT_IMAGE}:{PROJECT_VERSION}", owner
        else:
            assert _pinned(image), f"{owner}: image {image!r} is not pinned"
    (override,) = [i for i in KUSTOMIZATION["images"] if i["name"] == PROJECT_IMAGE]
    assert override["newTag"] == PROJECT_VERSION


def test_every_compose_image_is_built_here_or_pinned():
    built = {s["image"] for s in COMPOSE["services"].values() if "build" in s}
    for name, service in COMPOSE["services"].items():
        if "build" in service:
            build = service["build"]
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
        else:
            assert service["image"] in built or _pinned(service["image"]), name


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("Dockerfile")), ids=str)
def test_dockerfiles_pin_their_bases_and_copy_files_that_exist(path):
    stages: set[str] = set()
    for line in path.read_text().splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            assert words[1] in stages or _pinned(words[1]), f"{path}: {words[1]} unpinned"
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            context = ROOT if path.parent.name == "docker" else path.parent
            for source in words[1:-1]:
                assert (context / source).exists(), f"{path}: COPY {source} does not exist"


# Commands -------------------------------------------------------------------------------------


def test_every_etp_server_command_parses_with_the_real_launcher():
    from core.cli import build_parser

    seen = 0
    for owner, argv in _all_invocations():
        if argv[0] == "etp-server":
            try:
                build_parser().parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{owner}: {' '.join(argv)} is not a valid etp-server command")
            seen += 1
    assert seen >= 6  # compose and Kubernetes each run migrate, api and worker


def test_every_ray_start_option_exists():
    options = _ray_start_options()
    seen = 0
    for owner, argv in _all_invocations():
        if argv[:2] == ["ray", "start"]:
            for word in argv[2:]:
                assert word.split("=")[0] in options, f"{owner}: ray start has no {word}"
            seen += 1
    for doc in _of_kind("RayCluster"):
        groups = [doc["spec"]["headGroupSpec"], *doc["spec"]["workerGroupSpecs"]]
        for group in groups:
            for key, value in group["rayStartParams"].items():
                assert f"--{key}" in options, f"rayStartParams: ray start has no --{key}"
                assert isinstance(value, str), f"rayStartParams {key}: KubeRay wants strings"
                if key == "resources":
                    json.loads(json.loads(value))  # KubeRay's quoted JSON
            seen += 1
    assert seen >= 5


def test_arq_commands_name_the_real_worker_settings():
    source = (ROOT / "workers/main.py").read_text()
    assert re.search(r"^WorkerSettings = ", source, re.M)
    seen = 0
    for owner, argv in _all_invocations():
        if argv[:3] == ["python", "-m", "arq"]:
            assert argv[-1] == "workers.main.WorkerSettings", owner
            seen += 1
    assert seen >= 2


def test_api_and_worker_join_the_ray_cluster_from_etp_ray_address_without_hosting_actors():
    roles: dict[str, list[str]] = {}
    for owner, argv in _all_invocations():
        if argv[0] == "etp-server" and argv[1] in ("api", "worker"):
            roles.setdefault(owner, []).append(argv[1])
    assert len(roles) == 4, roles  # compose api + worker, Kubernetes api + worker
    for owner in roles:
        starts = [a for o, a in _all_invocations() if o == owner and a[:2] == ["ray", "start"]]
        assert len(starts) == 1, f"{owner} must join Ray before running"
        (argv,) = starts
        assert "--address=$ETP_RAY_ADDRESS" in argv, owner
        assert "--num-cpus=0" in argv, owner
        assert not any(w.startswith("--resources") for w in argv), f"{owner} offers actor slots"
    config = _named("ConfigMap", "etp-config")["data"]
    head_service = f"{_of_kind('RayCluster')[0]['metadata']['name']}-head-svc:6379"
    assert config["ETP_RAY_ADDRESS"] == head_service


# Settings -------------------------------------------------------------------------------------


@cache
def _known_etp_variables() -> frozenset[str]:
    from core.jobs import WorkerConfig
    from core.settings import Settings

    known = {"ETP_" + f.name.upper() for f in fields(Settings)}
    known |= {"ETP_" + f.name.upper() for f in fields(WorkerConfig)}
    for path in (ROOT / "core").rglob("*.py"):  # settings read by name (core/object_store.py)
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and re.fullmatch(r"ETP_[A-Z0-9_]+", value):
                known.add(value)
    return frozenset(known)


def test_every_etp_variable_referenced_by_a_deployment_is_a_real_setting():
    texts = {path: path.read_text() for path in _deploy_files("")}
    texts[COMPOSE_PATH] = COMPOSE_PATH.read_text()
    for path, text in texts.items():
        for name in set(re.findall(r"\bETP_[A-Z0-9_]+\b", text)):
            assert name in _known_etp_variables(), f"{path.relative_to(ROOT)}: {name} is unknown"


def _placeholder_secrets() -> dict[str, str]:
    return {
        "ETP_SECRET_KEY": "s" * 48,
        "ETP_DATABASE_URL": "postgresql://etp:pw@db:5432/etp",
        "ETP_REDIS_URL": "redis://redis:6379/0",
    }


def test_the_shipped_configuration_loads():
    from core.jobs import worker_config
    from core.object_store import ArtifactSettings
    from core.settings import load_settings

    env = {**_named("ConfigMap", "etp-config")["data"], **_placeholder_secrets()}
    settings = load_settings(env)
    assert settings.is_production
    assert worker_config(settings, env).worker_metrics_port == 9100
    assert ArtifactSettings.from_env(env).store == "s3"

    compose_env = {
        key: re.sub(r"\$\{[A-Z_]+:[-?]([^}]*)\}", r"\1", str(value))
        for key, value in COMPOSE["x-etp-env"].items()
    }
    compose_env.update({"ETP_SECRET_KEY": "s" * 48})
    compose_settings = load_settings(compose_env)
    assert compose_settings.base_url == "https://localhost:8443"


def test_config_and_secret_references_resolve():
    secrets = SECRETS
    config_maps = {doc["metadata"]["name"]: doc for doc in _of_kind("ConfigMap")}
    for owner, container in _containers():
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps, owner
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets, owner
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]]["stringData"], f"{owner}: {ref}"
    for secret in secrets.values():
        for key, value in secret["stringData"].items():
            # The example must not be usable as is: production refuses an empty key.
            assert value in ("", "token"), f"secrets.example.yaml ships a value for {key}"


def _env_names(container: dict[str, Any]) -> set[str]:
    secrets = SECRETS
    config_maps = {doc["metadata"]["name"]: doc for doc in _of_kind("ConfigMap")}
    names = {variable["name"] for variable in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(config_maps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            names |= set(secrets[source["secretRef"]["name"]]["stringData"])
    return names


def test_every_ray_process_gets_its_token_from_a_secret():
    for owner, container in _containers():
        runs_ray = owner.startswith("RayCluster/") or any(
            argv[:2] == ["ray", "start"]
            for argv in shell_invocations(container.get("command"), container.get("args"))
        )
        if not runs_ray:
            continue
        assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= _env_names(container), owner
        for variable in container.get("env", []):
            if variable["name"].startswith("RAY_AUTH_"):
                assert "secretKeyRef" in variable.get("valueFrom", {}), owner
        config = _named("ConfigMap", "etp-config")["data"]
        assert not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} & set(config), "the token is a secret"
    assert COMPOSE["x-etp-env"]["RAY_AUTH_MODE"] == "token"
    assert COMPOSE["x-etp-env"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")


# Probes, services, autoscaling ----------------------------------------------------------------


def _container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def test_http_probes_point_at_real_routes_and_ports():
    routes = _app_routes()
    checked = 0
    for owner, container in _containers():
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(kind, {}).get("httpGet")
            if probe is None:
                continue
            assert probe["path"] in routes, f"{owner} {kind}: no route {probe['path']}"
            assert probe["port"] in _container_ports(container), f"{owner} {kind}: port"
            checked += 1
    assert checked >= 3
    (api,) = [c for o, c in _containers() if o == "Deployment/etp-api/api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert _container_ports(api)["http"] == 8000
    assert "--port 8000" in " ".join(api["command"])
    dockerfile = (DEPLOY / "docker/Dockerfile").read_text()
    healthcheck = re.search(r"127\.0\.0\.1:8000(/\w+)", dockerfile)
    assert healthcheck is not None and healthcheck.group(1) in routes


def test_services_select_pods_on_named_ports_and_the_hpa_scales_the_api_on_cpu():
    templates = dict(_pod_templates())
    for service in _of_kind("Service"):
        selector = service["spec"]["selector"]
        targets = [
            t for t in templates.values() if selector.items() <= t["metadata"]["labels"].items()
        ]
        assert targets, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            for template in targets:
                names = set().union(*(_container_ports(c) for c in template["spec"]["containers"]))
                assert port["targetPort"] in names
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    deployment = _named(target["kind"], target["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert "cpu" in container["resources"]["requests"], "HPA on CPU needs CPU requests"


def test_ray_groups_and_workloads_request_resources():
    for owner, container in _containers():
        requests = container.get("resources", {}).get("requests", {})
        assert {"cpu", "memory"} <= requests.keys(), f"{owner} has no resource requests"
    (cluster,) = _of_kind("RayCluster")
    assert cluster["spec"]["rayVersion"] == importlib.metadata.version("ray")
    assert cluster["spec"]["workerGroupSpecs"], "no worker group"
    (migrate,) = _named("Job", "etp-migrate")["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["etp-server", "migrate"]


# Prometheus -----------------------------------------------------------------------------------

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, ranges, grouping labels, Grafana
    variables, strings, numbers and function names left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        token = match.group(0)
        if expr[match.end() :].lstrip().startswith("(") or token.lower() in PROMQL_WORDS:
            continue
        names.add(token)
    return names


def test_promql_metric_names_finds_metrics_only():
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(etp_x_bucket{route="/a", le!="1e3"}'
        "[$__rate_interval]))) / on(instance) group_left(job) max without (pod) (up offset 5m)"
        ' > 1e3 and ray_actors{State=~"A|B"} or vector(0)'
    )
    assert promql_metric_names(expr) == {"etp_x_bucket", "up", "ray_actors"}


_METRIC_CLASSES = {
    "Counter": "counter",
    "Gauge": "gauge",
    "Histogram": "histogram",
    "Summary": "summary",
    "Info": "info",
    "Enum": "gauge",
    "CounterMetricFamily": "counter",
    "GaugeMetricFamily": "gauge",
    "HistogramMetricFamily": "histogram",
    "SummaryMetricFamily": "summary",
    "InfoMetricFamily": "info",
}
_METRIC_MODULES = {
    "prometheus_client": "",
    "prometheus_client.core": "",
    "prometheus_client.metrics": "",
    "prometheus_client.metrics_core": "",
    "ray.util.metrics": "ray_",  # Ray exports application metrics with a ray_ prefix
}


def _series(kind: str, name: str) -> set[str]:
    if kind == "counter":
        base = name.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    if kind == "summary":
        return {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
    if kind == "info":
        return {f"{name}_info"}
    return {name}


def _metric_constructor(node: ast.Call, imported: dict[str, tuple[str, str]]) -> tuple[str, str]:
    func = node.func
    if isinstance(func, ast.Name):
        return imported.get(func.id, ("", ""))
    if isinstance(func, ast.Attribute) and func.attr in _METRIC_CLASSES:
        base = ast.unparse(func.value)
        module = imported.get(base, ("", ""))[0] if base in imported else base
        if module in _METRIC_MODULES:
            return module, func.attr
    return "", ""


@cache
def defined_metric_series() -> frozenset[str]:
    """Every series name the server code can expose, from the metric constructors it calls."""
    series: set[str] = set()
    for package in SERVER_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            imported: dict[str, tuple[str, str]] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module in _METRIC_MODULES:
                    for alias in node.names:
                        if alias.name in _METRIC_CLASSES:
                            imported[alias.asname or alias.name] = (node.module, alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name in _METRIC_MODULES:
                            imported[alias.asname or alias.name] = (alias.name, "")
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                module, cls = _metric_constructor(node, imported)
                if not cls:
                    continue
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                name_node = node.args[0] if node.args else keywords.get("name")
                if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
                    continue
                parts = [
                    str(part.value)
                    for k in ("namespace", "subsystem")
                    if isinstance(part := keywords.get(k), ast.Constant) and part.value
                ]
                name = "_".join([*parts, name_node.value])
                series |= {_METRIC_MODULES[module] + s for s in _series(_METRIC_CLASSES[cls], name)}
    return frozenset(series)


@cache
def _ray_metric_names() -> frozenset[str]:
    """Metrics Ray itself exports: those its bundled Grafana dashboards query, and the node
    gauges of its reporter agent."""
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    ray_dir = Path(next(iter(spec.submodule_search_locations)))
    names: set[str] = set()
    for path in (ray_dir / "dashboard/modules/metrics/dashboards").glob("*.py"):
        names |= set(re.findall(r"\bray_[a-z0-9_]+", path.read_text()))
    reporter = (ray_dir / "dashboard/modules/reporter/reporter_agent.py").read_text()
    names |= {"ray_" + n for n in re.findall(r'Gauge\(\s*"([a-z0-9_]+)"', reporter)}
    return frozenset(names)


@cache
def _process_metric_names() -> frozenset[str]:
    """prometheus_client's process collector (process_*), registered in every process."""
    spec = importlib.util.find_spec("prometheus_client.process_collector")
    assert spec is not None and spec.origin
    source = Path(spec.origin).read_text()
    return frozenset(
        f"process_{n}"
        for n in re.findall(r"'([a-z_]+)'", source)
        if n.endswith(("_bytes", "_total", "_seconds", "_fds"))
    )


# Metrics from outside the code base, each with where it comes from.
EXTERNAL_METRICS = {
    "up": "Prometheus, per scrape target",
    "kubelet_volume_stats_available_bytes": "the kubelet (Kubernetes persistent volumes)",
    "kubelet_volume_stats_capacity_bytes": "the kubelet (Kubernetes persistent volumes)",
}


def _metric_is_defined(name: str) -> bool:
    return (
        name in defined_metric_series()
        or name in _ray_metric_names()
        or name in _process_metric_names()
        or name in EXTERNAL_METRICS
    )


def test_the_metric_scan_sees_the_metrics_the_code_defines():
    assert {
        "etp_http_requests_total",
        "etp_http_request_duration_seconds_bucket",
        "etp_ingest_points_total",
        "etp_ingest_rejections_total",
        "etp_ingest_batch_points_bucket",
        "etp_worker_jobs_total",
        "etp_jobs_total",  # a CounterMetricFamily("etp_jobs")
        "etp_job_duration_seconds_count",
    } <= defined_metric_series()
    assert {"ray_actors", "ray_node_disk_usage", "ray_node_disk_free"} <= _ray_metric_names()
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= (
        _process_metric_names()
    )
    assert not _metric_is_defined("etp_no_such_metric_total")


def _alert_rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


RULE_FILES = sorted((DEPLOY / "prometheus").rglob("*.yml"))
RULE_FILES = [p for p in RULE_FILES if "groups" in (yaml.safe_load(p.read_text()) or {})]
ACTIVE_RULE_FILES = [p for p in RULE_FILES if not _is_pending(p)]


def _dashboards(include_pending: bool) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, json.loads(path.read_text()))
        for path in sorted((DEPLOY / "grafana").rglob("*.json"))
        if include_pending or not _is_pending(path)
    ]


def _panel_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_every_metric_in_active_dashboards_and_alerts_is_defined():
    uses: list[tuple[str, str]] = []
    for path in ACTIVE_RULE_FILES:
        uses += [(f"{path.name}: {r['alert']}", r["expr"]) for r in _alert_rules(path)]
    for path, dashboard in _dashboards(include_pending=False):
        uses += [(f"{path.name}: {title}", expr) for title, expr in _panel_exprs(dashboard)]
    assert len(uses) > 30
    missing = sorted(
        f"{where}: {name}"
        for where, expr in uses
        for name in promql_metric_names(expr)
        if not _metric_is_defined(name)
    )
    assert not missing, "metrics not defined anywhere (move them to a pending/ file):\n" + (
        "\n".join(missing)
    )


def _balanced(expr: str) -> bool:
    stack = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_alert_rules_are_well_formed_and_documented(path):
    operations = (ROOT / "docs/operations.md").read_text()
    names = set()
    for rule in _alert_rules(path):
        name = rule["alert"]
        assert re.fullmatch(r"Etp[A-Z][A-Za-z]+", name), name
        assert name not in names, f"{name} twice"
        names.add(name)
        assert _balanced(rule["expr"]), f"{name}: unbalanced brackets"
        assert promql_metric_names(rule["expr"]), f"{name}: no metric"
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), f"{name}: for"
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert name in operations, f"{name} is not described in docs/operations.md"


def test_alerts_cover_ingest_errors_latency_outbox_actor_restarts_and_disk():
    active = {r["alert"]: r["expr"] for p in ACTIVE_RULE_FILES for r in _alert_rules(p)}
    covered = {
        "ingest errors": "etp_ingest_rejections_total",
        "ingest server errors": 'route="/api/v1/telemetry", status=~"5.."',
        "ack/flush latency": 'etp_http_request_duration_seconds_bucket{route="/api/v1/telemetry"',
        "outbox": 'job="relay_outbox"',
        "actor restarts": 'State="RESTARTING"',
        "disk": "ray_node_disk_usage",
    }
    for what, fragment in covered.items():
        assert any(fragment in expr for expr in active.values()), f"no alert on {what}"
    pending = {r["alert"] for p in RULE_FILES if _is_pending(p) for r in _alert_rules(p)}
    assert {"EtpFlushLatencyHigh", "EtpOutboxLag"} <= pending
    assert not pending & active.keys()


def _compose_mounts(service: str) -> dict[str, Path]:
    """container path -> host path of a compose service's bind mounts."""
    mounts = {}
    for volume in COMPOSE["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def _host_path(service: str, container_path: str) -> Path:
    for target, source in sorted(_compose_mounts(service).items(), key=lambda m: -len(m[0])):
        if container_path == target or container_path.startswith(target + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted into {service}")


def test_prometheus_configs_load_existing_rules_and_scrape_every_role():
    compose_config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    for pattern in compose_config["rule_files"]:
        host_pattern = _host_path("prometheus", pattern)
        assert sorted(host_pattern.parent.glob(host_pattern.name)) == [
            p for p in ACTIVE_RULE_FILES if p.parent == host_pattern.parent
        ]
    assert "/etc/prometheus/prometheus.yml" in _compose_mounts("prometheus")
    jobs = {job["job_name"]: job for job in compose_config["scrape_configs"]}
    assert {"etp-api", "etp-worker", "ray"} <= jobs.keys()
    services = COMPOSE["services"]
    for job in ("etp-api", "etp-worker", "ray"):
        assert jobs[job].get("metrics_path", "/metrics") in _app_routes()
        for sd in jobs[job]["dns_sd_configs"]:
            assert set(sd["names"]) <= services.keys(), job
    assert jobs["etp-api"]["dns_sd_configs"][0]["port"] == 8000
    worker_port = services["worker"]["environment"]["ETP_WORKER_METRICS_PORT"]
    assert jobs["etp-worker"]["dns_sd_configs"][0]["port"] == int(worker_port)
    ray_port = jobs["ray"]["dns_sd_configs"][0]["port"]
    for owner, argv in _all_invocations():
        if argv[:2] == ["ray", "start"] and owner.startswith("compose/"):
            assert f"--metrics-export-port={ray_port}" in argv, owner

    k8s_config = yaml.safe_load((DEPLOY / "prometheus/prometheus-kubernetes.yml").read_text())
    assert k8s_config["rule_files"] == compose_config["rule_files"]
    for owner, template in _pod_templates():
        annotations = template["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        assert annotations["prometheus.io/job"] in jobs, owner
        ports = set().union(*(_container_ports(c) for c in template["spec"]["containers"]))
        assert int(annotations["prometheus.io/port"]) in ports, owner
        assert annotations["prometheus.io/path"] in _app_routes()
    worker = _named("Deployment", "etp-worker")["spec"]["template"]["metadata"]["annotations"]
    config = _named("ConfigMap", "etp-config")["data"]
    assert worker["prometheus.io/port"] == config["ETP_WORKER_METRICS_PORT"]


# Grafana --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, dashboard", _dashboards(include_pending=True), ids=lambda v: getattr(v, "name", "")
)
def test_grafana_dashboards_are_well_formed(path, dashboard):
    assert dashboard["title"] and re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert _balanced(target["expr"]) and promql_metric_names(target["expr"])


def test_grafana_provisioning_loads_the_active_dashboards_only():
    uids = [d["uid"] for _, d in _dashboards(include_pending=True)]
    assert len(uids) == len(set(uids))
    provider_file = DEPLOY / "grafana/provisioning/dashboards/etp.yml"
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    host_dir = _host_path("grafana", provider["options"]["path"])
    assert host_dir == DEPLOY / "grafana/dashboards"
    assert not any(_is_pending(p) for p in _compose_mounts("grafana").values())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert datasources[0]["type"] == "prometheus"
    assert datasources[0]["url"] == "http://prometheus:9090"
    assert "prometheus" in COMPOSE["services"]
    overview = dict((p.name, d) for p, d in _dashboards(include_pending=False))["etp-overview.json"]
    rows = {panel["title"] for panel in overview["panels"] if panel["type"] == "row"}
    assert {"Ingest", "Actors (Ray)", "Workers", "HTTP"} <= rows


# nginx ----------------------------------------------------------------------------------------


def _nginx_location(text: str, selector: str) -> str:
    match = re.search(r"location\s+" + re.escape(selector) + r"\s*\{(.*?)\n\}", text, re.S)
    assert match, f"no location {selector}"
    return match.group(1)


def test_nginx_proxies_live_streams_unbuffered_and_websockets_with_upgrade():
    locations = (DEPLOY / "nginx/etp-locations.conf").read_text()
    routes = _app_routes()
    assert "/api/v1/telemetry/stream" in routes and "/api/v1/ws" in routes
    stream = _nginx_location(locations, "= /api/v1/telemetry/stream")
    assert "proxy_buffering off;" in stream
    assert re.search(r"proxy_read_timeout\s+\d+h;", stream)
    socket = _nginx_location(locations, "= /api/v1/ws")
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", socket)
    assert re.search(r"proxy_set_header\s+Connection\s+\$etp_connection_upgrade;", socket)
    # A location that sets headers inherits none: the forwarding headers must be repeated.
    top_level = set(re.findall(r"^proxy_set_header\s+(\S+)", locations, re.M)) - {"Connection"}
    assert top_level <= set(re.findall(r"proxy_set_header\s+(\S+)", socket))
    assert re.search(r"^proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;", locations, re.M)


def test_nginx_terminates_tls_with_the_certificate_the_entrypoint_makes():
    server = (DEPLOY / "nginx/etp.conf").read_text()
    script = (DEPLOY / "nginx/40-etp-tls-cert.sh").read_text()
    assert re.search(r"listen\s+8443\s+ssl;", server)
    assert re.search(r"server\s+api:8000\s+resolve;", server)
    match = re.search(r"^dir=(\S+)", script, re.M)
    assert match is not None
    cert_dir = match.group(1)
    assert re.search(rf"ssl_certificate\s+{cert_dir}/tls\.crt;", server)
    assert re.search(rf"ssl_certificate_key\s+{cert_dir}/tls\.key;", server)
    assert "openssl req -x509" in script
    nginx = COMPOSE["services"]["nginx"]
    assert "8443:8443" in nginx["ports"]
    assert any(v.split(":")[1] == cert_dir for v in nginx["volumes"])
    dockerfile = (DEPLOY / "nginx/Dockerfile").read_text()
    assert "/docker-entrypoint.d/40-etp-tls-cert.sh" in dockerfile
    api = COMPOSE["services"]["api"]
    assert "--port 8000" in api["command"][-1]
