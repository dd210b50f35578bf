"""The worker's periodic sweeps: scheduled profiles, sensor status, retention."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from core.redis_keys import sensor_status_channel
from tests.integration.helpers import create_project, create_sensor, register
from tests.integration.test_backfill import insert_points, make_session
from tests.integration.test_outbox import FAST, private_redis, worker_ctx
from workers.sweeps import (
    sweep_retention,
    sweep_scheduled_profiles,
    sweep_sensor_status,
    sweep_stalled_jobs,
)


@pytest.fixture
async def settings(settings, monkeypatch):
    return await private_redis(settings, monkeypatch)


async def test_a_scheduled_profile_becomes_active_at_its_start(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s")
    base = f"/api/v1/sensors/{sensor['id']}/profiles"
    old = await owner.json("POST", base, 201, json={"kind": "linear", "payload": {"a": 1, "b": 0}})
    await owner.json("POST", f"/api/v1/profiles/{old['id']}/activate", 200)
    new = await owner.json("POST", base, 201, json={"kind": "linear", "payload": {"a": 2, "b": 0}})
    starts = datetime.now(UTC) + timedelta(seconds=1)
    await owner.json(
        "POST",
        f"/api/v1/profiles/{new['id']}/schedule",
        200,
        json={"valid_from": starts.isoformat()},
    )
    async with worker_ctx(settings) as ctx:
        assert await sweep_scheduled_profiles(ctx) == 0  # not yet
        await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.05)
        assert await sweep_scheduled_profiles(ctx) == 1
        assert await sweep_scheduled_profiles(ctx) == 0  # once
    got = await owner.json("GET", f"/api/v1/profiles/{new['id']}")
    assert got["status"] == "active"
    assert datetime.fromisoformat(got["valid_from"]) == starts  # the schedule, not the sweep
    assert (await owner.json("GET", f"/api/v1/profiles/{old['id']}"))["status"] == "deprecated"
    events = await db.fetch(
        "SELECT project_id, payload FROM outbox WHERE event_type = 'profile.activated' ORDER BY id"
    )
    # The old profile's activation through the API came first; the sweep's event is the last.
    assert [e["payload"]["scheduled"] for e in events] == [False, True]
    event = events[-1]
    assert str(event["project_id"]) == project["id"]
    assert event["payload"]["profile_id"] == new["id"] and event["payload"]["scheduled"] is True


async def test_status_changes_are_recorded_and_published(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s")
    await db.execute(
        "UPDATE sensors SET last_seen_at = now() WHERE id = $1", uuid.UUID(sensor["id"])
    )
    listener = aioredis.from_url(settings.redis_url)
    pubsub = listener.pubsub()
    await pubsub.subscribe(sensor_status_channel())
    try:
        async with worker_ctx(settings) as ctx:
            assert await sweep_sensor_status(ctx) == 1
            assert await sweep_sensor_status(ctx) == 0
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
    finally:
        await pubsub.aclose()
        await listener.aclose()
    assert message is not None
    published = orjson.loads(message["data"])
    assert (published["sensor_id"], published["status"]) == (sensor["id"], "online")
    rows = await db.fetch("SELECT payload FROM outbox WHERE event_type = 'sensor.status_changed'")
    assert [r["payload"]["status"] for r in rows] == ["online"]


async def test_retention_removes_only_what_outlived_its_setting(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s")
    sid = uuid.UUID(sensor["id"])
    run_id, session_id = await make_session(db, owner, project["id"], sensor["id"], "succeeded")
    now = datetime.now(UTC).replace(microsecond=0)
    # Old points: a day with session points (kept) and untagged ones, and a day of untagged
    # points only (its chunk goes whole); recent untagged points stay.
    await insert_points(
        db,
        sid,
        now - timedelta(days=40),
        1000,
        step_ms=60_000,
        session=(run_id, session_id, 0, 400),
    )
    await db.execute("DELETE FROM telemetry_1m; DELETE FROM telemetry_session_1m")
    await insert_points(db, sid, now - timedelta(days=38), 500, step_ms=60_000)
    await db.execute("DELETE FROM telemetry_1m; DELETE FROM telemetry_session_1m")
    await insert_points(db, sid, now - timedelta(hours=5), 100, step_ms=60_000)
    chunks_before = await db.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry'"
    )
    user_id = uuid.UUID(owner.id)
    await db.execute(
        "INSERT INTO audit_events (project_id, action, entity_type, created_at) VALUES "
        "($1, 'old.thing', 'x', now() - interval '500 days'), ($1, 'new.thing', 'x', now())",
        uuid.UUID(project["id"]),
    )
    await db.execute(
        "INSERT INTO user_sessions (token_hash, user_id, expires_at, revoked_at) VALUES "
        "($1, $3, now() - interval '40 days', NULL), ($2, $3, now() + interval '1 day', NULL)",
        os.urandom(32),
        os.urandom(32),
        user_id,
    )
    await db.execute(
        "INSERT INTO idempotency_keys (scope, route, key, request_hash, expires_at) VALUES "
        "('u', 'r', 'old', '\\x00', now() - interval '1 hour'), "
        "('u', 'r', 'new', '\\x00', now() + interval '1 hour')"
    )
    sessions_before = await db.fetchval("SELECT count(*) FROM user_sessions")
    async with worker_ctx(settings) as ctx:
        key = ctx["store"].local_path("exports/old.csv")
    key.parent.mkdir(parents=True)
    key.write_text("a,b\n")
    await db.execute(
        "INSERT INTO exports (project_id, kind, format, status, storage_key, finished_at) VALUES "
        "($1, 'runs', 'csv', 'succeeded', 'exports/old.csv', now() - interval '8 days')",
        uuid.UUID(project["id"]),
    )
    hook = await db.fetchval(
        "INSERT INTO webhook_subscriptions (project_id, url, secret) VALUES ($1, 'http://x', 's') "
        "RETURNING id",
        uuid.UUID(project["id"]),
    )
    await db.execute(
        "INSERT INTO webhook_messages (subscription_id, webhook_id, event_type, body, status, "
        "finished_at) VALUES ($1, 'msg_old', 'export.ready', '{}', 'succeeded', "
        "now() - interval '31 days'), ($1, 'msg_new', 'export.ready', '{}', 'succeeded', now())",
        hook,
    )
    config = FAST.replace(telemetry_retention_days=30)
    async with worker_ctx(settings, config) as ctx:
        done = await sweep_retention(ctx)
    assert done["exports"] == 1 and not key.exists()
    assert await db.fetchval("SELECT status FROM exports") == "expired"
    assert [r["webhook_id"] for r in await db.fetch("SELECT webhook_id FROM webhook_messages")] == [
        "msg_new"
    ]
    assert done["telemetry"] == 600 + 500 and done["audit_events"] == 1
    assert done["idempotency_keys"] == 1 and done["user_sessions"] == 1
    assert await db.fetchval("SELECT count(*) FROM user_sessions") == sessions_before - 1
    assert [
        r["action"]
        for r in await db.fetch("SELECT action FROM audit_events WHERE entity_type = 'x'")
    ] == ["new.thing"]
    assert [r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys")] == ["new"]
    left = await db.fetch(
        "SELECT capture_session_id IS NOT NULL AS tagged, ts > now() - interval '1 day' AS "
        "recent, count(*) AS n FROM telemetry GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert [(r["tagged"], r["recent"], r["n"]) for r in left] == [
        (False, True, 100),
        (True, False, 400),
    ]
    chunks_after = await db.fetchval(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry'"
    )
    assert chunks_after < chunks_before, "a chunk without session points is dropped whole"
    # The rollups of the cleaned range describe what is left.
    rolled = await db.fetchval(
        "SELECT sum(count) FROM telemetry_1m WHERE bucket < now() - interval '1 day'"
    )
    assert rolled == 400


async def test_a_backfill_that_keeps_stopping_fails_and_frees_its_sessions(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="s")
    run_id, session_id = await make_session(db, owner, project["id"], sensor["id"], "succeeded")
    start = datetime.now(UTC) - timedelta(hours=1)
    await insert_points(
        db, uuid.UUID(sensor["id"]), start, 100, session=(run_id, session_id, 0, 100)
    )
    profile = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": 3, "b": 0}},
    )
    await owner.json("POST", f"/api/v1/profiles/{profile['id']}/activate", 200)
    job = await owner.json(
        "POST", f"/api/v1/profiles/{profile['id']}/backfill", 202, json={"from": start.isoformat()}
    )
    # As if workers had died on it again and again.
    await db.execute(
        "UPDATE backfill_jobs SET status = 'running', attempts = $2, "
        "lease_until = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(job["id"]),
        FAST.backfill_max_attempts,
    )
    async with worker_ctx(settings) as ctx:
        await sweep_stalled_jobs(ctx)
    row = await db.fetchrow(
        "SELECT status, error FROM backfill_jobs WHERE id = $1", uuid.UUID(job["id"])
    )
    assert row["status"] == "failed" and "stopped 5 times" in row["error"]
    status = await db.fetchval("SELECT status FROM capture_sessions WHERE id = $1", session_id)
    assert status == "succeeded"
    events = await db.fetch(
        "SELECT event_type FROM outbox WHERE event_type LIKE 'backfill.%' ORDER BY id"
    )
    assert [e["event_type"] for e in events] == ["backfill.started", "backfill.failed"]
