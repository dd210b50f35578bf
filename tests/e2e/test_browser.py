"""End to end in headless Chromium against the real stack (see conftest.py for the harness)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ARTIFACTS, SCREENSHOTS, Stack, run_scenario


@pytest.mark.timeout(300)
def test_accounts_projects_members_audit_and_tokens(stack: Stack) -> None:
    """Register, sign out and in, create a project, add a member and change their role, read
    the audit log, create an API token that is shown once (tests/e2e/accounts_projects.mjs)."""
    output = run_scenario(stack, "accounts_projects.mjs")
    assert "scenario passed" in output
    for name in ("register", "projects", "project-members", "project-audit", "profile-token"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5_000, name


@pytest.mark.timeout(300)
def test_capture_live_history_and_compare(stack: Stack) -> None:
    """Project, experiment, run and sensor through the UI; a capture whose points, sent with
    the sensor token, appear in the live chart; stop, history, a timed capture, bulk tags, a
    comparison, the sensor monitor, token rotation and a profile (telemetry_flow.mjs)."""
    output = run_scenario(stack, "telemetry_flow.mjs")
    assert "scenario passed" in output
    for name in (
        "live-viewer",
        "run-live",
        "run-capture",
        "history",
        "experiment-runs",
        "compare",
        "sensors",
        "sensor-page",
    ):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5_000, name


@pytest.mark.timeout(300)
def test_chart_bench(stack: Stack) -> None:
    """200,000 points in one chart, 20 live panels at 5,000 points/s (bench.mjs, /bench)."""
    output = run_scenario(stack, "bench.mjs")
    assert "scenario passed" in output
    figures = json.loads((ARTIFACTS / "bench-web.json").read_text())
    assert figures["done"] and figures["pointsRendered"] == figures["pointsSent"]
