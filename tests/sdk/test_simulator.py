"""``etp simulate`` scenarios through the real ingest: journal entries and capture coverage."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from etp_client import Client
from etp_client.simulator.scenarios import PointSource, SimulationConfig

from tests.sdk.test_cli import etp

RATE_HZ = 20.0
DURATION_S = 1.5


def simulate(
    user: dict[str, Any],
    stack: str,
    project_id: str,
    run_id: str | None,
    scenario: str,
    *extra: str,
) -> dict[str, Any]:
    """``etp --json simulate`` with two sensors; with ``run_id``, as a capture session."""
    capture = ["--capture-run", run_id, "--summary-timeout", "3"] if run_id else []
    result = etp(
        "--url",
        stack,
        "--token",
        user["token"],
        "--json",
        "simulate",
        "--project",
        project_id,
        "--sensors",
        "2",
        "--rate",
        str(RATE_HZ),
        "--duration",
        str(DURATION_S),
        "--scenario",
        scenario,
        *capture,
        "--seed",
        "7",
        "--send-interval",
        "0.1",
        *extra,
    )
    output: dict[str, Any] = json.loads(result.stdout)
    return output


@pytest.fixture
def lab(client: Client, project: dict[str, Any]) -> dict[str, Any]:
    experiment = client.create_experiment(project["id"], "simulated")
    return {"project": project, "experiment": experiment}


def _new_run(client: Client, lab: dict[str, Any], name: str) -> str:
    return client.create_run(lab["experiment"]["id"], name)["id"]


def _journal_codes(client: Client, project_id: str) -> dict[str, set[str]]:
    return {
        s["name"]: {e["code"] for e in client.sensor_errors(s["id"])}
        for s in client.list_sensors(project_id, q="sim-")
    }


def _summary(out: dict[str, Any]) -> dict[str, Any]:
    session = out["capture_session"]
    assert session["status"] == "succeeded"
    if session["summary"] is None:
        pytest.skip("the server does not write capture session summaries yet")
    summary: dict[str, Any] = session["summary"]
    return summary


def test_normal_then_bad_data_then_clock_skew(
    stack: str, user: dict[str, Any], client: Client, lab: dict[str, Any]
) -> None:
    pid = lab["project"]["id"]
    normal = simulate(user, stack, pid, None, "normal")
    expected = int(RATE_HZ * DURATION_S) * 2
    assert normal["sent"] == normal["accepted"] == expected
    assert normal["rejected"] == normal["failed"] == 0 and normal["latency_p50_ms"] is not None
    assert _journal_codes(client, pid) == {"sim-1": set(), "sim-2": set()}
    sensors = client.list_sensors(pid, q="sim-")
    assert sorted(s["name"] for s in sensors) == ["sim-1", "sim-2"]
    assert all(s["expected_rate_hz"] == RATE_HZ for s in sensors)

    # Reusing the sensors rotates their tokens (a token is shown only once).
    bad = simulate(user, stack, pid, None, "bad-data")
    assert len(client.list_sensors(pid, q="sim-")) == 2
    assert bad["rejected"] == expected // 5 and bad["accepted"] == expected - expected // 5
    assert set(bad["rejected_by_code"]) == {"invalid_value", "invalid_timestamp"}
    for codes in _journal_codes(client, pid).values():
        assert codes == {"invalid_value", "invalid_timestamp"}

    skew = simulate(user, stack, pid, _new_run(client, lab, "skew"), "clock-skew")
    assert skew["accepted"] == 0 and skew["rejected_by_code"] == {"timestamp_in_future": expected}
    for codes in _journal_codes(client, pid).values():
        assert "timestamp_in_future" in codes
    summary = _summary(skew)
    assert summary["points"] == 0


def test_normal_capture_is_fully_covered(
    stack: str, user: dict[str, Any], client: Client, lab: dict[str, Any]
) -> None:
    out = simulate(user, stack, lab["project"]["id"], _new_run(client, lab, "cov"), "normal")
    summary = _summary(out)
    assert summary["points"] == out["accepted"] == out["sent"]
    # The session window also spans starting and stopping it; the simulation covered the
    # rest of it without gaps.
    simulated_share = DURATION_S / summary["duration_s"]
    for sensor in summary["sensors"]:
        assert sensor["gap_count"] == 0, summary
        assert sensor["coverage"] >= 0.9 * simulated_share, summary


def test_dropout_leaves_gaps_and_lower_coverage(
    stack: str, user: dict[str, Any], client: Client, lab: dict[str, Any]
) -> None:
    run_id = _new_run(client, lab, "dropout")
    out = simulate(user, stack, lab["project"]["id"], run_id, "dropout", "--duration", "3.5")
    assert 0 < out["accepted"] < RATE_HZ * 3.5 * 2 and out["rejected"] == 0
    summary = _summary(out)
    assert all(s["gap_count"] >= 1 and s["coverage"] < 0.85 for s in summary["sensors"]), summary


def test_late_points_are_all_stored_and_burst_exceeds_the_rate(
    stack: str, user: dict[str, Any], client: Client, lab: dict[str, Any]
) -> None:
    pid = lab["project"]["id"]
    late = simulate(user, stack, pid, None, "late")
    expected = int(RATE_HZ * DURATION_S) * 2
    assert late["accepted"] == late["sent"] == expected and late["rejected"] == 0
    assert _journal_codes(client, pid) == {"sim-1": set(), "sim-2": set()}
    stored = client.telemetry_history(sensor_ids=[s["id"] for s in client.list_sensors(pid)])
    assert len(stored) == expected
    assert [p["ts"] for p in stored] == sorted(p["ts"] for p in stored)

    burst = simulate(user, stack, pid, None, "burst")
    assert burst["accepted"] > expected and burst["rejected"] == 0


def test_simulate_as_one_sensor_with_its_token(
    stack: str, user: dict[str, Any], client: Client, project: dict[str, Any]
) -> None:
    sensor = client.create_sensor(project["id"], "own-device")
    out = json.loads(
        etp(
            "--url",
            stack,
            "--token",
            user["token"],
            "--json",
            "simulate",
            "--sensor-token",
            sensor["token"],
            "--rate",
            "10",
            "--duration",
            "1",
            "--waveform",
            "random-walk",
        ).stdout
    )
    assert out["accepted"] == 10 and out["per_sensor"][0]["name"] == "token-1"
    assert len(client.list_sensors(project["id"])) == 1  # no sim-N sensors made


def test_scenarios_shape_the_points() -> None:
    """The point generator alone (no network): what each scenario produces."""

    def produced(scenario: str, **options: Any) -> list[dict[str, Any]]:
        config = SimulationConfig(rate_hz=10, duration_s=6, scenario=scenario, seed=1, **options)
        source = PointSource(config, 0, 1_000.0)
        points = source.take(1_000.0 + 100) + source.drain()
        return points

    assert len(produced("normal")) == 60
    assert len(produced("dropout")) == 40  # two 1 s silences in 6 s
    assert len(produced("burst")) > 60
    late = produced("late")
    assert len(late) == 60 and [p["ts"] for p in late] != sorted(p["ts"] for p in late)
    skewed = produced("clock-skew", skew_s=600)
    assert skewed[0]["ts"] == int((1_000 + 600) * 1e6)

    def broken(p: dict[str, Any]) -> bool:
        value = p["value"]
        number = isinstance(value, float) and math.isfinite(value)
        return "ts" not in p or not number

    assert len([p for p in produced("bad-data") if broken(p)]) == 12
