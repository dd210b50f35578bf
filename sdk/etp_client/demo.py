"""Demo data through the public API: ``python -m etp_client.demo --url URL``.

Creates a demo user with a generated password, a project with experiments and runs, three
sensors with conversion profiles, and capture sessions recorded by streaming simulated
telemetry through the real ingest — so a new user sees real charts at once.

Re-running is idempotent per server: the credentials are kept (mode 0600) in
``$XDG_DATA_HOME/etp/demo.json`` (default ``~/.local/share/etp/demo.json``), keyed by URL; when
they still sign in and the demo project still exists, nothing is created again and the same
credentials are printed. ``--fresh`` makes a new demo user and project regardless.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from etp_client.client import Client
from etp_client.errors import EtpError, MethodNotAllowed, RouteNotFound
from etp_client.simulator import SimSensor, SimulationConfig, simulate
from etp_client.transport import USER_AGENT, api_base, raise_for_error

PROJECT_NAME = "Demo lab"
SENSORS: tuple[dict[str, Any], ...] = (
    {
        "name": "chamber-temp",
        "type": "temperature",
        "input_unit": "mV",
        "display_unit": "°C",
        "profile": ("linear", {"a": 0.5, "b": 10.0}),
        "waveform": "sine",
    },
    {
        "name": "chamber-humidity",
        "type": "humidity",
        "input_unit": "mV",
        "display_unit": "%RH",
        "profile": ("polynomial", {"coefficients": [5.0, 1.8, 0.01]}),
        "waveform": "random-walk",
    },
    {
        "name": "shaker-accel",
        "type": "acceleration",
        "input_unit": "count",
        "display_unit": "g",
        "profile": ("table", {"points": [[0, -2.0], [20, 0.0], [40, 2.0]]}),
        "waveform": "square",
    },
)
EXPERIMENTS: tuple[dict[str, Any], ...] = (
    {
        "name": "Thermal chamber calibration",
        "experiment_type": "calibration",
        "tags": ["thermal", "demo"],
        "runs": [
            ("ramp 20-40 °C", {"setpoint_c": 40, "ramp_c_per_min": 2}, "normal"),
            ("soak at 40 °C", {"setpoint_c": 40, "soak_min": 30}, "dropout"),
        ],
    },
    {
        "name": "Vibration endurance",
        "experiment_type": "endurance",
        "tags": ["vibration", "demo"],
        "runs": [("sweep 5-500 Hz", {"f_min_hz": 5, "f_max_hz": 500, "g_rms": 1.5}, "burst")],
    },
)


def credentials_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "etp" / "demo.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, url: str, entry: dict[str, Any]) -> None:
    data = _load(path)
    data[url] = entry
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, orjson.dumps(data, option=orjson.OPT_INDENT_2))
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def register_demo_user(url: str) -> dict[str, Any]:
    """A new user with a generated password, and a personal API token for it."""
    email = f"demo-{secrets.token_hex(3)}@example.com"
    password = secrets.token_urlsafe(15)
    with httpx.Client(
        base_url=api_base(url), timeout=30, headers={"User-Agent": USER_AGENT}
    ) as http:
        response = http.post(
            "/auth/register",
            json={"email": email, "display_name": "Demo User", "password": password},
        )
        raise_for_error(response)
        csrf = {"X-CSRF-Token": response.json()["csrf_token"]}
        response = http.post("/auth/tokens", json={"name": "demo data"}, headers=csrf)
        raise_for_error(response)
        token = response.json()["token"]
        http.post("/auth/logout", headers=csrf)
    return {"email": email, "password": password, "token": token}


def _still_there(url: str, entry: dict[str, Any]) -> bool:
    try:
        with Client(url, entry["token"]) as client:
            client.get_project(entry["project_id"])
    except (EtpError, KeyError):
        return False
    return True


def _sensors(client: Client, project_id: str, rate_hz: float) -> list[tuple[dict[str, Any], str]]:
    made = []
    for spec in SENSORS:
        sensor = client.create_sensor(
            project_id,
            spec["name"],
            type=spec["type"],
            input_unit=spec["input_unit"],
            display_unit=spec["display_unit"],
            expected_rate_hz=rate_hz,
            description="demo sensor (simulated)",
        )
        kind, payload = spec["profile"]
        profile = client.create_profile(
            sensor["id"], kind, payload, description="factory calibration"
        )
        client.activate_profile(profile["id"])
        made.append((dict(sensor), sensor["token"]))
    return made


def _log_training_metrics(client: Client, run_id: str, steps: int = 50) -> None:
    metrics = []
    for step in range(steps):
        metrics.append({"name": "loss", "value": 1.0 / (1 + step * 0.2), "step": step})
        metrics.append({"name": "drift_c", "value": 0.05 * (step % 7), "step": step})
    with contextlib.suppress(RouteNotFound, MethodNotAllowed):  # a server without metrics yet
        client.log_metrics(run_id, metrics)


def _record(
    client: Client,
    url: str,
    run_id: str,
    sensors: list[tuple[dict[str, Any], str]],
    scenario: str,
    duration_s: float,
    rate_hz: float,
) -> dict[str, Any]:
    client.set_run_sensors(run_id, [s["id"] for s, _ in sensors])
    session = client.start_capture(run_id, notes=f"simulated ({scenario})")
    sims = [SimSensor(name=s["name"], token=t, id=s["id"]) for s, t in sensors]
    config = SimulationConfig(rate_hz=rate_hz, duration_s=duration_s, scenario=scenario)
    try:
        result = asyncio.run(simulate(url, sims, config))
    finally:
        client.stop_capture(session["id"])
    _log_training_metrics(client, run_id)
    client.set_run_status(run_id, "succeeded")
    totals = result.totals()
    print(
        f"  recorded capture session #{session['ordinal']} ({scenario}): "
        f"{totals['accepted']} points accepted",
        flush=True,
    )
    return dict(session)


def create_demo(url: str, *, duration_s: float, rate_hz: float) -> dict[str, Any]:
    user = register_demo_user(url)
    with Client(url, user["token"]) as client:
        project = client.create_project(
            PROJECT_NAME, description="Sample data: simulated sensors streamed through the ingest"
        )
        sensors = _sensors(client, project["id"], rate_hz)
        for spec in EXPERIMENTS:
            experiment = client.create_experiment(
                project["id"],
                spec["name"],
                experiment_type=spec["experiment_type"],
                tags=spec["tags"],
                description="demo",
            )
            for name, params, scenario in spec["runs"]:
                run = client.create_run(
                    experiment["id"], name, params=params, tags=["demo"], notes="demo data"
                )
                _record(client, url, run["id"], sensors, scenario, duration_s, rate_hz)
            client.create_run(experiment["id"], "planned run", params={"note": "not started"})
    return {**user, "project_id": project["id"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etp_client.demo", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("ETP_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per capture")
    parser.add_argument("--rate", type=float, default=20.0, help="points/s per sensor")
    parser.add_argument("--fresh", action="store_true", help="a new demo user and project")
    parser.add_argument("--credentials-file", type=Path, default=None)
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    path = args.credentials_file or credentials_path()
    entry = _load(path).get(url)
    reused = bool(entry) and not args.fresh and _still_there(url, entry or {})
    if not reused:
        print(f"etp demo: creating demo data on {url} ...", flush=True)
        try:
            entry = create_demo(url, duration_s=args.duration, rate_hz=args.rate)
        except EtpError as exc:
            print(f"etp demo: failed: {exc}", file=sys.stderr)
            return 1
        _save(path, url, entry)
    assert entry is not None
    print(
        f"etp demo: sign in at {url}/ as {entry['email']} with password {entry['password']}"
        f" ({'existing' if reused else 'new'}; saved in {path})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
