"""Backfills: preview, start, chunked recomputation of values and rollups, capture session
status, and the drill — a million points, the worker killed mid-way, resumed elsewhere."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.helpers import create_project, create_sensor, register, send_points
from tests.integration.test_outbox import (
    kill,
    private_redis,
    running_worker,
    spawn_worker,
    wait_for,
)


@pytest.fixture
async def settings(settings, monkeypatch):
    return await private_redis(settings, monkeypatch)


RAW = "((g % 1000) * 0.1 - 20)::float8"


async def insert_points(
    db,
    sensor_id: uuid.UUID,
    start: datetime,
    count: int,
    *,
    step_ms: int = 1000,
    session: tuple[uuid.UUID, uuid.UUID, int, int] | None = None,
) -> None:
    """``count`` points stored without conversion (physical = raw, ``no_profile``), the ones
    with index in [lo, hi) tagged with (run, session), and their rollups — in a few statements."""
    run_id, session_id, lo, hi = session or (None, None, 0, 0)
    await db.execute(
        "INSERT INTO telemetry (sensor_id, ts, raw_value, physical_value, conversion_status, "
        "run_id, capture_session_id) SELECT $1, "
        f"$2::timestamptz + g * ($4::int * interval '1 millisecond'), {RAW}, "
        f"{RAW}, 'no_profile', CASE WHEN g >= $5 AND g < $6 THEN $7::uuid END, "
        "CASE WHEN g >= $5 AND g < $6 THEN $8::uuid END FROM generate_series(0, $3 - 1) AS g",
        sensor_id,
        start,
        count,
        step_ms,
        lo,
        hi,
        run_id,
        session_id,
    )
    await db.execute(
        "INSERT INTO telemetry_1m SELECT sensor_id, date_trunc('minute', ts), count(*), "
        "sum(raw_value), min(raw_value), max(raw_value), (array_agg(raw_value ORDER BY ts))[1], "
        "(array_agg(raw_value ORDER BY ts DESC))[1], count(physical_value), sum(physical_value), "
        "min(physical_value), max(physical_value), (array_agg(physical_value ORDER BY ts))[1], "
        "(array_agg(physical_value ORDER BY ts DESC))[1], min(ts), max(ts) FROM telemetry "
        "WHERE sensor_id = $1 GROUP BY 1, 2",
        sensor_id,
    )
    await db.execute(
        "INSERT INTO telemetry_session_1m SELECT capture_session_id, sensor_id, "
        "date_trunc('minute', ts), count(*), sum(raw_value), min(raw_value), max(raw_value), "
        "count(physical_value), sum(physical_value), min(physical_value), max(physical_value), "
        "min(ts), max(ts) FROM telemetry WHERE sensor_id = $1 AND capture_session_id IS NOT NULL "
        "GROUP BY 1, 2, 3",
        sensor_id,
    )


async def make_session(db, owner, project_id: str, sensor_id: str, status: str) -> tuple:
    """A run using the sensor and a finished capture session of it (status as given)."""
    experiment = await owner.json(
        "POST", f"/api/v1/projects/{project_id}/experiments", 201, json={"name": "calibration"}
    )
    run = await owner.json(
        "POST", f"/api/v1/experiments/{experiment['id']}/runs", 201, json={"name": "run"}
    )
    await owner.json(
        "PUT", f"/api/v1/runs/{run['id']}/sensors", 200, json={"sensor_ids": [sensor_id]}
    )
    session_id = await db.fetchval(
        "INSERT INTO capture_sessions (run_id, project_id, ordinal, status, started_at, "
        "stopped_at) VALUES ($1, $2, 1, $3, now() - interval '30 days', "
        "now() - interval '1 minute') "
        "RETURNING id",
        uuid.UUID(run["id"]),
        uuid.UUID(project_id),
        status,
    )
    return uuid.UUID(run["id"]), session_id


async def assert_matches_reference(db, sensor_id: uuid.UUID, a: float, b: float) -> None:
    """Every point equals a*raw+b (version 1, ok) and every rollup equals a fresh aggregate."""
    wrong = await db.fetchval(
        "SELECT count(*) FROM telemetry WHERE sensor_id = $1 AND (physical_value IS DISTINCT "
        "FROM raw_value * $2::float8 + $3::float8 OR conversion_status <> 'ok' "
        "OR profile_version IS DISTINCT FROM 1)",
        sensor_id,
        a,
        b,
    )
    assert wrong == 0
    bad_minutes = await db.fetchval(
        "WITH ref AS (SELECT date_trunc('minute', ts) AS bucket, count(*) AS n, "
        "count(physical_value) AS pc, sum(physical_value) AS ps, min(physical_value) AS pmin, "
        "max(physical_value) AS pmax, (array_agg(physical_value ORDER BY ts))[1] AS pf, "
        "(array_agg(physical_value ORDER BY ts DESC))[1] AS pl FROM telemetry "
        "WHERE sensor_id = $1 GROUP BY 1) SELECT count(*) FROM ref FULL JOIN (SELECT * FROM "
        "telemetry_1m WHERE sensor_id = $1) t USING (bucket) WHERE t.count IS DISTINCT FROM "
        "ref.n OR t.phys_count IS DISTINCT FROM ref.pc OR t.phys_min IS DISTINCT FROM ref.pmin "
        "OR t.phys_max IS DISTINCT FROM ref.pmax OR t.phys_first IS DISTINCT FROM ref.pf "
        "OR t.phys_last IS DISTINCT FROM ref.pl OR abs(t.phys_sum - ref.ps) > 1e-9 * "
        "greatest(1, abs(ref.ps))",
        sensor_id,
    )
    assert bad_minutes == 0
    bad_session_minutes = await db.fetchval(
        "WITH ref AS (SELECT capture_session_id, date_trunc('minute', ts) AS bucket, "
        "count(*) AS n, sum(physical_value) AS ps, min(physical_value) AS pmin, "
        "max(physical_value) AS pmax FROM telemetry WHERE sensor_id = $1 "
        "AND capture_session_id IS NOT NULL GROUP BY 1, 2) SELECT count(*) FROM ref FULL JOIN "
        "(SELECT * FROM telemetry_session_1m WHERE sensor_id = $1) t "
        "USING (capture_session_id, bucket) WHERE t.count IS DISTINCT FROM ref.n "
        "OR t.phys_min IS DISTINCT FROM ref.pmin OR t.phys_max IS DISTINCT FROM ref.pmax "
        "OR abs(t.phys_sum - ref.ps) > 1e-9 * greatest(1, abs(ref.ps))",
        sensor_id,
    )
    assert bad_session_minutes == 0


async def _setup(app, db, a: float, b: float) -> tuple[Any, dict, dict, dict]:
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="thermo")
    profile = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": a, "b": b}},
    )
    await owner.json("POST", f"/api/v1/profiles/{profile['id']}/activate", 200)
    return owner, project, sensor, profile


async def _job(db, profile_id: str) -> Any:
    return await db.fetchrow(
        "SELECT * FROM backfill_jobs WHERE profile_id = $1", uuid.UUID(profile_id)
    )


async def _finished(db, profile_id: str) -> bool:
    job = await _job(db, profile_id)
    return job is not None and job["status"] == "succeeded"


async def test_preview_start_and_finish_with_sessions_rollups_and_live_ingest(
    app, db, settings, monkeypatch
):
    monkeypatch.setenv("ETP_BACKFILL_CHUNK_POINTS", "1000")
    owner, project, sensor, profile = await _setup(app, db, 2.0, 1.0)
    sid = uuid.UUID(sensor["id"])
    run_id, session_id = await make_session(db, owner, project["id"], sensor["id"], "succeeded")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    await insert_points(db, sid, start, 6000, session=(run_id, session_id, 1000, 3000))
    base = f"/api/v1/profiles/{profile['id']}"
    # Without "from" the window starts at activation: nothing stored lies in it.
    empty = await owner.json("POST", f"{base}/backfill-preview", 200, json={})
    assert empty["rows_in_range"] == 0 and empty["sessions"] == []
    preview = await owner.json(
        "POST", f"{base}/backfill-preview", 200, json={"from": start.isoformat()}
    )
    assert (preview["rows_in_range"], preview["rows_changing"]) == (6000, 6000)
    assert preview["extends_window"] is True and preview["sampled"] is False
    by_session = {s["capture_session_id"]: s for s in preview["sessions"]}
    tagged = by_session[str(session_id)]
    raw = [((g % 1000) * 0.1 - 20) for g in range(1000, 3000)]
    assert tagged["rows"] == 2000
    assert tagged["before"]["min"] == pytest.approx(min(raw))
    assert tagged["after"]["max"] == pytest.approx(2 * max(raw) + 1)
    assert tagged["after"]["mean"] == pytest.approx(2 * sum(raw) / 2000 + 1)
    assert by_session[None]["rows"] == 4000
    # Nothing changed yet: the preview is a dry run.
    assert await db.fetchval("SELECT count(*) FROM telemetry WHERE conversion_status = 'ok'") == 0

    started = await owner.json("POST", f"{base}/backfill", 202, json={"from": start.isoformat()})
    assert started["status"] == "queued" and started["session_ids"] == [str(session_id)]
    await owner.json("POST", f"{base}/backfill", 409, json={"from": start.isoformat()})
    status = await db.fetchval("SELECT status FROM capture_sessions WHERE id = $1", session_id)
    assert status == "backfilling"
    # Ingest keeps working meanwhile, and live points use the new profile.
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    response = await send_points(app, sensor["token"], [{"ts": now_ms, "value": 10.0}])
    assert response.status_code == 202
    live = await db.fetchrow(
        "SELECT physical_value, conversion_status FROM telemetry "
        "WHERE sensor_id = $1 AND raw_value = 10.0 AND ts > now() - "
        "interval '1 minute'",
        sid,
    )
    assert (live["physical_value"], live["conversion_status"]) == (21.0, "ok")

    async with running_worker(settings):
        await wait_for(lambda: _finished(db, profile["id"]), 30)
    await assert_matches_reference(db, sid, 2.0, 1.0)
    listed = await owner.json("GET", f"{base}/backfills")
    job = listed["items"][0]
    assert job["status"] == "succeeded" and job["progress"] == 100.0
    assert job["rows_done"] == job["rows_total"] == 6001 and job["chunks_done"] == 7
    status = await db.fetchval("SELECT status FROM capture_sessions WHERE id = $1", session_id)
    assert status == "succeeded"
    events = await db.fetch(
        "SELECT event_type, payload FROM outbox WHERE event_type LIKE 'backfill.%' ORDER BY id"
    )
    assert [e["event_type"] for e in events] == ["backfill.started", "backfill.finished"]
    assert events[1]["payload"]["rows_changed"] == 6000  # the live point was already right
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM audit_events WHERE action LIKE 'profile.%' OR action LIKE "
            "'capture_session.%' ORDER BY id"
        )
    ]
    assert actions[-7:] == [
        "profile.backfill_previewed",
        "profile.backfill_previewed",
        "profile.window_extended",
        "capture_session.backfilling",
        "profile.backfill_started",
        "capture_session.succeeded",
        "profile.backfill_finished",
    ]


@pytest.mark.timeout(240)
async def test_a_million_points_survive_a_killed_worker_without_redoing_chunks(
    app, db, settings, monkeypatch, tmp_path
):
    monkeypatch.setenv("ETP_BACKFILL_CHUNK_POINTS", "50000")
    owner, project, sensor, profile = await _setup(app, db, 0.5, -3.0)
    sid = uuid.UUID(sensor["id"])
    run_id, session_id = await make_session(db, owner, project["id"], sensor["id"], "archived")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    await insert_points(
        db, sid, start, 1_000_000, step_ms=50, session=(run_id, session_id, 200_000, 600_000)
    )
    started = await owner.json(
        "POST", f"/api/v1/profiles/{profile['id']}/backfill", 202, json={"from": start.isoformat()}
    )
    backfill_id = uuid.UUID(started["id"])

    async def chunks() -> list[Any]:
        return await db.fetch(
            "SELECT * FROM backfill_chunks WHERE backfill_id = $1 ORDER BY chunk_no", backfill_id
        )

    # One long slice: the job is in the middle of a run when the worker dies, so only the
    # expired lease (and the sweep that notices it) can bring it back.
    first = spawn_worker(settings, tmp_path / "worker.log", ETP_BACKFILL_SLICE_S="600")
    try:
        await wait_for(lambda: _chunks_at_least(db, backfill_id, 4), 90, 0.05)
    finally:
        kill(first)
    before = await chunks()
    job = await db.fetchrow("SELECT * FROM backfill_jobs WHERE id = $1", backfill_id)
    assert job["status"] == "running" and 4 <= len(before) < 20, "killed mid-way"
    assert job["chunks_done"] == len(before) and job["cursor_ts"] == before[-1]["ts_to"]
    second = spawn_worker(settings, tmp_path / "worker.log")
    try:
        await wait_for(lambda: _finished(db, profile["id"]), 120, 0.2)
    finally:
        kill(second)
    after = await chunks()
    assert [c["chunk_no"] for c in after] == list(range(20))
    assert [dict(c) for c in after[: len(before)]] == [dict(c) for c in before], "not redone"
    first_tokens = {c["lease_token"] for c in before}
    assert not first_tokens & {c["lease_token"] for c in after[len(before) :]}
    assert sum(c["row_count"] for c in after) == 1_000_000
    for previous, chunk in itertools.pairwise(after):
        assert previous["ts_to"] < chunk["ts_from"], "chunks are disjoint and in order"
    job = await db.fetchrow("SELECT * FROM backfill_jobs WHERE id = $1", backfill_id)
    assert (job["rows_done"], job["rows_changed"], job["attempts"]) == (1_000_000, 1_000_000, 1)
    await assert_matches_reference(db, sid, 0.5, -3.0)
    status = await db.fetchval("SELECT status FROM capture_sessions WHERE id = $1", session_id)
    assert status == "archived"


async def _chunks_at_least(db, backfill_id: uuid.UUID, count: int) -> bool:
    return (
        await db.fetchval(
            "SELECT count(*) FROM backfill_chunks WHERE backfill_id = $1", backfill_id
        )
        >= count
    )
