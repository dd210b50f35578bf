"""Sensor status in the database: the SQL filter agrees with the Python rule; sweeps record
each change once (outbox) and publish it; the ingest error journal stays bounded."""

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from core.sensor_status import (
    StatusThresholds,
    compute_status,
    publish_status_transitions,
    status_sql,
    status_sql_args,
    sweep_sensor_statuses,
)
from core.stores.ingest_errors import insert_ingest_errors
from tests.integration.helpers import create_project, create_sensor, register

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def _sensors(app, count: int, **fields):
    owner = await register(app)
    project = await create_project(owner)
    return [await create_sensor(owner, project["id"], name=f"s{i}", **fields) for i in range(count)]


async def test_the_sql_status_rule_agrees_with_compute_status(app, db):
    sensors = await _sensors(app, 1)
    sid = uuid.UUID(sensors[0]["id"])
    thresholds = StatusThresholds(
        delayed_missed_intervals=3, delayed_after_s=10.0, offline_after_s=60.0
    )
    silences = [None, 0, 5, 9.99, 10.01, 59, 60.5, 119, 121, 170, 181, 359, 361, 4000]
    for rate in (None, 0.01, 1 / 60, 1.0, 100.0):
        for silence in silences:
            last_seen = None if silence is None else T0 - timedelta(seconds=silence)
            await db.execute(
                "UPDATE sensors SET last_seen_at = $2, expected_rate_hz = $3 WHERE id = $1",
                sid,
                last_seen,
                rate,
            )
            in_sql = await db.fetchval(
                f"SELECT {status_sql('s', 2)} FROM sensors s WHERE s.id = $1",
                sid,
                *status_sql_args(T0, thresholds),
            )
            assert in_sql == compute_status(last_seen, rate, T0, thresholds), (rate, silence)


async def test_sweeps_record_each_change_once_with_a_controllable_clock(app, db, settings):
    slow, fast = await _sensors(app, 2, expected_rate_hz=1.0)
    never = (await _sensors(app, 1))[0]
    clock = FakeClock(T0)
    await db.execute(
        "UPDATE sensors SET last_seen_at = $1 WHERE id = ANY($2::uuid[])",
        T0,
        [uuid.UUID(slow["id"]), uuid.UUID(fast["id"])],
    )
    first = await sweep_sensor_statuses(db, now=clock.advance(1), settings=settings)
    assert {(str(t.sensor_id), t.previous, t.status) for t in first} == {
        (slow["id"], "never_seen", "online"),
        (fast["id"], "never_seen", "online"),
    }
    assert await sweep_sensor_statuses(db, now=clock.advance(1), settings=settings) == []
    # The fast one keeps sending; the slow one falls silent.
    await db.execute(
        "UPDATE sensors SET last_seen_at = $1 WHERE id = $2",
        clock.advance(10),
        uuid.UUID(fast["id"]),
    )
    delayed = await sweep_sensor_statuses(db, now=clock.now, settings=settings)
    assert [(str(t.sensor_id), t.status) for t in delayed] == [(slow["id"], "delayed")]
    offline = await sweep_sensor_statuses(db, now=clock.advance(61), settings=settings)
    assert {(str(t.sensor_id), t.previous, t.status) for t in offline} == {
        (slow["id"], "delayed", "offline"),
        (fast["id"], "online", "offline"),
    }
    stored = {
        str(r["id"]): r["reported_status"]
        for r in await db.fetch("SELECT id, reported_status FROM sensors")
    }
    assert stored == {slow["id"]: "offline", fast["id"]: "offline", never["id"]: "never_seen"}
    outbox = await db.fetch("SELECT project_id, event_type, payload FROM outbox ORDER BY id")
    assert len(outbox) == 5 and {r["event_type"] for r in outbox} == {"sensor.status_changed"}
    last = outbox[-1]["payload"]
    assert last["status"] == "offline" and last["previous_status"] in ("online", "delayed")
    assert str(outbox[0]["project_id"]) == slow["project_id"]


async def test_status_changes_are_published_on_redis(app, settings):
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("events:sensor-status")
    try:
        from core.sensor_status import StatusTransition

        transition = StatusTransition(
            uuid.uuid4(), uuid.uuid4(), "n", "online", "delayed", T0, T0 + timedelta(seconds=11)
        )
        assert await publish_status_transitions(client, [transition]) == 1
        message = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                break
        assert message is not None
        body = orjson.loads(message["data"])
        assert body["type"] == "sensor.status_changed" and body["status"] == "delayed"
        assert await publish_status_transitions(None, [transition]) == 0
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_the_ingest_error_journal_keeps_the_newest_entries(app, db):
    sensor, other = await _sensors(app, 2)
    sid, oid = uuid.UUID(sensor["id"]), uuid.UUID(other["id"])
    await insert_ingest_errors(db, sensor_id=oid, errors=[("bad", "m", 0, None)])
    for batch in range(3):
        errors = [("invalid_value", f"batch {batch} point {i}", i, "s" * 300) for i in range(400)]
        assert await insert_ingest_errors(db, sensor_id=sid, errors=errors) == 400
    rows = await db.fetch(
        "SELECT message, sample FROM sensor_ingest_errors WHERE sensor_id = $1 ORDER BY id", sid
    )
    assert len(rows) == 1000
    assert rows[0]["message"] == "batch 0 point 200"  # the 200 oldest went
    assert rows[-1]["message"] == "batch 2 point 399"
    assert {len(r["sample"]) for r in rows} == {200}
    # Another sensor's journal is untouched; a small keep prunes harder; a huge batch is capped.
    assert (
        await db.fetchval("SELECT count(*) FROM sensor_ingest_errors WHERE sensor_id = $1", oid)
        == 1
    )
    await insert_ingest_errors(db, sensor_id=sid, errors=[("x", "y", None, None)] * 3, keep=5)
    assert (
        await db.fetchval("SELECT count(*) FROM sensor_ingest_errors WHERE sensor_id = $1", sid)
        == 5
    )
    assert await insert_ingest_errors(db, sensor_id=sid, errors=[("x", "y", 1, "z")] * 1500) == 1000
    assert await insert_ingest_errors(db, sensor_id=sid, errors=[]) == 0
