"""``python -m etp_client.demo``: demo data made through the public API, idempotent per server."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from etp_client import Client
from etp_client.cli.auth import token_from_password
from etp_client.demo import credentials_path


def run_demo(url: str) -> str:
    """The module as the launcher runs it (``XDG_DATA_HOME`` points into the test's tmp dir)."""
    done = subprocess.run(
        [sys.executable, "-m", "etp_client.demo", "--url", url, "--duration", "1"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_creates_a_user_project_sensors_and_recorded_sessions(
    stack: str, tmp_path: Path
) -> None:
    first = run_demo(stack)
    match = re.search(r"as (\S+@\S+) with password (\S+) \(new;", first)
    assert match, first
    email, password = match.groups()
    saved = credentials_path()
    assert saved.is_relative_to(tmp_path) and stat.S_IMODE(saved.stat().st_mode) == 0o600

    token = token_from_password(stack, email, password, "check")["token"]  # the password works
    with Client(stack, token) as client:
        [project] = client.list_projects()
        sensors = client.list_sensors(project["id"])
        assert len(sensors) >= 3
        for sensor in sensors:
            assert [p["status"] for p in client.list_profiles(sensor["id"])] == ["active"]
        experiments = client.list_experiments(project["id"])
        assert len(experiments) >= 2
        runs = client.list_runs(project_id=project["id"])
        recorded = [r for r in runs if r["status"] == "succeeded"]
        assert len(recorded) >= 3
        for run in recorded:
            [session] = client.list_capture_sessions(run["id"])
            assert session["status"] == "succeeded"
            points = client.telemetry_history(capture_session_id=session["id"])
            assert {p["sensor_id"] for p in points} == {s["id"] for s in sensors}

    again = run_demo(stack)
    assert f"as {email} with password {password} (existing;" in again
    assert "creating" not in again
