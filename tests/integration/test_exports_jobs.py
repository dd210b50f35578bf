"""Export jobs: queued by the api, written by the worker into the artifact store, downloaded."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from arq.connections import RedisSettings, create_pool

from tests.integration.helpers import add_member, create_project, create_sensor, register
from tests.integration.test_backfill import insert_points, make_session
from tests.integration.test_outbox import private_redis, running_worker, wait_for


@pytest.fixture
async def settings(settings, monkeypatch):
    return await private_redis(settings, monkeypatch)


async def _status(owner, export_id: str, status: str) -> dict | None:
    body = await owner.json("GET", f"/api/v1/exports/{export_id}")
    return body if body["status"] == status else None


async def _download(owner, body: dict) -> bytes:
    path = body["download_url"].removeprefix("http://testserver.local")
    response = await owner.call("GET", path)
    assert response.status_code == 200
    return await response.get_data()


async def test_a_telemetry_export_runs_as_a_job_even_if_its_queue_entry_is_lost(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="thermo")
    run_id, session_id = await make_session(db, owner, project["id"], sensor["id"], "succeeded")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    await insert_points(
        db, uuid.UUID(sensor["id"]), start, 3000, session=(run_id, session_id, 500, 2500)
    )
    created = await owner.json(
        "POST",
        "/api/v1/exports",
        202,
        json={"kind": "telemetry", "format": "csv", "run_id": str(run_id)},
    )
    assert created["status"] == "queued"
    queued = await owner.json("GET", f"/api/v1/exports/{created['id']}")
    assert queued["download_url"] is None and queued["progress"] == 0
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    await redis.flushdb()  # the job is lost; the stalled-job sweep must start it anyway
    await redis.aclose()
    async with running_worker(settings):
        body = await wait_for(lambda: _status(owner, created["id"], "succeeded"), 30)
    assert body["progress"] == 100 and body["row_count"] == 2000
    content = await _download(owner, body)
    assert hashlib.sha256(content).hexdigest() == body["sha256"]
    assert len(content) == body["size_bytes"]
    lines = content.decode().splitlines()
    manifest = orjson.loads(lines[0].removeprefix("# "))
    assert manifest["row_count"] == 2000 and manifest["run_id"] == str(run_id)
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert len(rows) == 2000 and {r["capture_session_id"] for r in rows} == {str(session_id)}
    assert float(rows[0]["raw_value"]) == 500 * 0.1 - 20
    event = await db.fetchrow(
        "SELECT project_id, payload FROM outbox WHERE event_type = 'export.ready'"
    )
    assert str(event["project_id"]) == project["id"]
    assert event["payload"]["export_id"] == created["id"] and event["payload"]["row_count"] == 2000
    # Only the requester sees it, not other members, and not strangers.
    viewer, stranger = await register(app), await register(app)
    await add_member(owner, project["id"], viewer, "viewer")
    await viewer.json("GET", f"/api/v1/exports/{created['id']}", 404)
    await stranger.json("GET", f"/api/v1/exports/{created['id']}/download", 404)


async def test_runs_and_metrics_export_as_json_lines_and_csv(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    experiment = await owner.json(
        "POST", f"/api/v1/projects/{project['id']}/experiments", 201, json={"name": "sweep"}
    )
    runs = [
        await owner.json(
            "POST",
            f"/api/v1/experiments/{experiment['id']}/runs",
            201,
            json={"name": f"lr-{i}", "params": {"lr": i / 10}},
        )
        for i in range(3)
    ]
    await db.execute(
        "INSERT INTO run_metrics (run_id, name, step, value) SELECT $1, 'loss', g, 1.0 / (g + 1) "
        "FROM generate_series(0, 99) AS g",
        uuid.UUID(runs[0]["id"]),
    )
    runs_export = await owner.json(
        "POST",
        "/api/v1/exports",
        202,
        json={"kind": "runs", "format": "json", "experiment_id": experiment["id"]},
    )
    metrics_export = await owner.json(
        "POST",
        "/api/v1/exports",
        202,
        json={"kind": "metrics", "format": "csv", "run_id": runs[0]["id"]},
    )
    async with running_worker(settings):
        runs_body = await wait_for(lambda: _status(owner, runs_export["id"], "succeeded"), 20)
        metrics_body = await wait_for(lambda: _status(owner, metrics_export["id"], "succeeded"), 20)
    lines = (await _download(owner, runs_body)).decode().splitlines()
    exported = [orjson.loads(line) for line in lines]
    assert [r["name"] for r in exported] == ["lr-0", "lr-1", "lr-2"]
    assert exported[2]["params"] == {"lr": 0.2}
    rows = list(csv.DictReader(io.StringIO((await _download(owner, metrics_body)).decode())))
    assert len(rows) == 100 and rows[0]["name"] == "loss" and float(rows[1]["value"]) == 0.5


async def test_bad_requests_and_a_requester_who_lost_access(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s")
    editor, stranger = await register(app), await register(app)
    await add_member(owner, project["id"], editor, "editor")
    await owner.json("POST", "/api/v1/exports", 422, json={"kind": "images", "format": "csv"})
    await owner.json("POST", "/api/v1/exports", 422, json={"kind": "telemetry", "format": "csv"})
    await owner.json(
        "POST",
        "/api/v1/exports",
        422,
        json={"kind": "runs", "format": "xml", "project_id": project["id"]},
    )
    await stranger.json(
        "POST", "/api/v1/exports", 404, json={"kind": "telemetry", "sensor_ids": [sensor["id"]]}
    )
    created = await editor.json(
        "POST", "/api/v1/exports", 202, json={"kind": "telemetry", "sensor_ids": [sensor["id"]]}
    )
    await owner.json("DELETE", f"/api/v1/projects/{project['id']}/members/{editor.id}", 204)
    async with running_worker(settings):
        await wait_for(lambda: _failed(db, created["id"]), 20)
    row = await db.fetchrow(
        "SELECT status, error, storage_key FROM exports WHERE id = $1", uuid.UUID(created["id"])
    )
    assert row["status"] == "failed" and "not found" in row["error"] and row["storage_key"] is None
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE event_type = 'export.failed'") == 1


async def _failed(db, export_id: str) -> bool:
    return (
        await db.fetchval("SELECT status FROM exports WHERE id = $1", uuid.UUID(export_id))
        == "failed"
    )
