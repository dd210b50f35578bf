"""Start/Stop capture with sensors streaming: tags, the stop barrier and the summary."""

import asyncio
import time
import uuid

from tests.integration.helpers import create_project, create_sensor, register, send_points


async def make_run_with_sensors(owner, project_id: str, sensors: list[dict]) -> dict:
    experiment = await owner.json(
        "POST", f"/api/v1/projects/{project_id}/experiments", 201, json={"name": "exp"}
    )
    run = await owner.json(
        "POST", f"/api/v1/experiments/{experiment['id']}/runs", 201, json={"name": "run"}
    )
    await owner.json(
        "PUT",
        f"/api/v1/runs/{run['id']}/sensors",
        200,
        json={"sensor_ids": [s["id"] for s in sensors]},
    )
    return run


async def stream_now(app, token: str, stop: asyncio.Event, sent: list[int], rate_hz: int) -> None:
    """Sends one point per tick with the wall-clock time until told to stop."""
    while not stop.is_set():
        ts = int(time.time() * 1000)
        response = await send_points(app, token, [{"ts": ts, "value": 1.0}])
        assert response.status_code == 202, await response.get_json()
        sent.append(ts)
        await asyncio.sleep(1 / rate_hz)


async def test_a_session_holds_exactly_the_points_inside_its_window(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensors = [
        await create_sensor(owner, project["id"], name=f"s{i}", expected_rate_hz=20)
        for i in range(2)
    ]
    run = await make_run_with_sensors(owner, project["id"], sensors)
    stop = asyncio.Event()
    sent: dict[str, list[int]] = {s["id"]: [] for s in sensors}
    streams = [
        asyncio.create_task(stream_now(app, s["token"], stop, sent[s["id"]], 20)) for s in sensors
    ]
    await asyncio.sleep(0.5)
    session = await owner.json("POST", f"/api/v1/runs/{run['id']}/capture-sessions", 201)
    again = await owner.json("POST", f"/api/v1/runs/{run['id']}/capture-sessions", 200)
    assert again["id"] == session["id"]  # a double click starts nothing new
    await asyncio.sleep(1.5)
    stopped = await owner.json("POST", f"/api/v1/capture-sessions/{session['id']}/stop", 200)
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*streams)
    assert stopped["status"] == "succeeded"
    row = await db.fetchrow(
        "SELECT started_at, stopped_at, summary, status FROM capture_sessions WHERE id = $1",
        uuid.UUID(session["id"]),
    )
    rows = await db.fetch("SELECT sensor_id, ts, capture_session_id, run_id FROM telemetry")
    inside = [r for r in rows if row["started_at"] <= r["ts"] < row["stopped_at"]]
    outside = [r for r in rows if not row["started_at"] <= r["ts"] < row["stopped_at"]]
    assert inside and outside
    assert all(r["capture_session_id"] == uuid.UUID(session["id"]) for r in inside)
    assert all(r["run_id"] == uuid.UUID(run["id"]) for r in inside)
    bad = [(r["ts"], r["capture_session_id"]) for r in outside if r["capture_session_id"]]
    assert not bad, (str(row["started_at"]), str(row["stopped_at"]), [str(b[0]) for b in bad[:5]])
    summary = row["summary"]
    assert summary is not None, "the stop barrier stores a summary"
    per_sensor = {s["sensor_id"]: s for s in summary["sensors"]}
    for sensor in sensors:
        tagged = sum(1 for r in inside if r["sensor_id"] == uuid.UUID(sensor["id"]))
        assert per_sensor[sensor["id"]]["points"] == tagged
        assert 0 < per_sensor[sensor["id"]]["coverage"] <= 1
    assert summary["points"] == len(inside)
    stopped_again = await owner.json("POST", f"/api/v1/capture-sessions/{session['id']}/stop", 200)
    assert stopped_again["stopped_at"] == stopped["stopped_at"]


async def test_run_and_capture_changes_are_outbox_events_in_their_transaction(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s", expected_rate_hz=1)
    run = await make_run_with_sensors(owner, project["id"], [sensor])
    session = await owner.json("POST", f"/api/v1/runs/{run['id']}/capture-sessions", 201)
    await owner.json("POST", f"/api/v1/capture-sessions/{session['id']}/stop", 200)
    await owner.json("POST", f"/api/v1/runs/{run['id']}/status", 200, json={"status": "succeeded"})
    profile = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": 1, "b": 0}},
    )
    await owner.json("POST", f"/api/v1/profiles/{profile['id']}/activate", 200)
    rows = await db.fetch("SELECT event_type, payload FROM outbox ORDER BY id")
    assert [r["event_type"] for r in rows] == [
        "run.status_changed",
        "capture_session.started",
        "capture_session.stopped",
        "run.status_changed",
        "profile.activated",
    ]
    assert rows[0]["payload"] == {"run_id": run["id"], "from": "draft", "to": "running"}
    assert rows[2]["payload"]["summary"]["sensors"][0]["sensor_id"] == sensor["id"]
    assert rows[3]["payload"]["to"] == "succeeded"
