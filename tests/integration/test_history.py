"""History pages, downsampling and exports through HTTP, against real PostgreSQL+TimescaleDB."""

import asyncio
import csv
import io
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import orjson
import pytest
import redis.asyncio as aioredis

from core import telemetry_read
from core.jobs import RUN_EXPORT
from core.redis_keys import arq_queue
from tests.integration.helpers import (
    add_member,
    create_project,
    create_sensor,
    register,
    send_points,
)

API = "/api/v1"
MINUTE_MS = 60_000


def iso(ms: int) -> str:
    return quote(datetime.fromtimestamp(ms / 1000, UTC).isoformat())


def us_of(value: str) -> int:
    delta = datetime.fromisoformat(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


def ms_of(value: str) -> int:
    return us_of(value) // 1000


async def ingest(app, token: str, points: list[tuple[int, float]]) -> None:
    for start in range(0, len(points), 5000):
        chunk = [{"ts": ts, "value": v} for ts, v in points[start : start + 5000]]
        response = await send_points(app, token, chunk)
        assert response.status_code == 202, await response.get_json()


def reference(points, *, origin_us: int, width_us: int, start_us: int, end_us: int):
    """Per bucket (count, min, max, avg, first, last), computed in Python from raw points."""
    buckets: dict[int, list[tuple[int, float]]] = {}
    for ts_ms, value in sorted(points):
        ts = ts_ms * 1000
        if start_us <= ts < end_us:
            key = origin_us + (ts - origin_us) // width_us * width_us
            buckets.setdefault(key, []).append((ts, value))
    return {
        key: (
            len(vs),
            min(v for _, v in vs),
            max(v for _, v in vs),
            sum(v for _, v in vs) / len(vs),
            vs[0][1],
            vs[-1][1],
        )
        for key, vs in buckets.items()
    }


def assert_matches(body, points):
    expected = reference(
        points,
        origin_us=us_of(body["origin"]),
        width_us=body["bucket_ms"] * 1000,
        start_us=us_of(body["from"]),
        end_us=us_of(body["to"]),
    )
    got = {us_of(b["t"]): b for b in body["series"][0]["buckets"]}
    assert sorted(got) == sorted(expected)
    for key, (count, lo, hi, avg, first, last) in expected.items():
        bucket = got[key]
        assert (bucket["count"], bucket["min"], bucket["max"]) == (count, lo, hi)  # exact
        assert (bucket["first"], bucket["last"]) == (first, last)
        assert bucket["avg"] == pytest.approx(avg, rel=1e-9)


@pytest.fixture
async def setup(app):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="thermo")
    return owner, project, sensor


def spiky_points(start_ms: int, count: int, step_ms: int, seed: int = 7):
    rng = random.Random(seed)
    points = [(start_ms + i * step_ms, round(rng.gauss(20, 2), 3)) for i in range(count)]
    for i in rng.sample(range(count), 5):  # single-point spikes a mean would hide
        points[i] = (points[i][0], rng.choice([-500.0, 900.0]))
    return points


async def test_aggregates_equal_a_python_reference_on_raw_and_rollup_paths(app, setup):
    owner, _project, sensor = setup
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - 40 * MINUTE_MS) // MINUTE_MS * MINUTE_MS + 1234
    points = spiky_points(start_ms, 2400, 500)  # 20 minutes at 2 Hz
    await ingest(app, sensor["token"], points)
    window = f"from={iso(start_ms - 5000)}&to={iso(start_ms + 21 * MINUTE_MS)}"
    for max_points, source in ((300, "raw"), (5, "rollup_1m"), (1, "rollup_1m")):
        body = await owner.json(
            "GET",
            f"{API}/telemetry/aggregate?sensor_ids={sensor['id']}&{window}&max_points={max_points}",
        )
        assert body["source"] == source
        n_buckets = len(body["series"][0]["buckets"])
        assert 1 <= n_buckets <= max_points + 1  # the range widens to whole buckets
        assert_matches(body, points)
        assert max(b["max"] for b in body["series"][0]["buckets"]) == 900.0


async def test_the_date_bin_fallback_matches_time_bucket(app, db, setup):
    _owner, _project, sensor = setup
    start_ms = int(time.time() * 1000) - 10 * MINUTE_MS
    points = spiky_points(start_ms, 600, 700, seed=3)
    await ingest(app, sensor["token"], points)
    target = telemetry_read.Target(
        sensors=(telemetry_read.SensorInfo(uuid.UUID(sensor["id"]), "t", "", "", uuid.uuid4()),)
    )
    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    bodies = [
        await telemetry_read.aggregate(
            db,
            target=target,
            start=start,
            end=start + timedelta(minutes=8),
            max_points=100,
            physical=False,
            relative=False,
            timescale=timescale,
        )
        for timescale in (True, False)
    ]
    assert bodies[0]["source"] == "raw" and bodies[0]["series"] == bodies[1]["series"]
    as_json = orjson.loads(orjson.dumps(bodies[1], default=str))
    as_json["origin"] = as_json["origin"].replace(" ", "T")
    as_json["from"] = as_json["from"].replace(" ", "T")
    as_json["to"] = as_json["to"].replace(" ", "T")
    for bucket in as_json["series"][0]["buckets"]:
        bucket["t"] = bucket["t"].replace(" ", "T")
    assert_matches(as_json, points)


async def test_session_aggregates_are_relative_to_the_session_start(app, setup):
    owner, project, sensor = setup
    experiment = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "e"}
    )
    run = await owner.json(
        "POST", f"{API}/experiments/{experiment['id']}/runs", 201, json={"name": "r"}
    )
    await owner.json(
        "PUT", f"{API}/runs/{run['id']}/sensors", 200, json={"sensor_ids": [sensor["id"]]}
    )
    session = await owner.json("POST", f"{API}/runs/{run['id']}/capture-sessions", 201)
    started_ms = ms_of(session["started_at"])
    inside = spiky_points(started_ms + 10, 400, 5, seed=11)  # 2 s at 200 Hz
    outside = [(started_ms - 5000 + i, 1e6) for i in range(10)]  # before the session
    await asyncio.sleep(max(0.0, (started_ms + 2100) / 1000 - time.time()))  # no future points
    await ingest(app, sensor["token"], outside + inside)
    await owner.json("POST", f"{API}/capture-sessions/{session['id']}/stop", 200)
    cid = session["id"]
    body = await owner.json(
        "GET", f"{API}/telemetry/aggregate?capture_session_id={cid}&relative=true&max_points=20"
    )
    assert body["source"] == "raw" and body["origin"] == session["started_at"]
    buckets = body["series"][0]["buckets"]
    assert buckets[0]["offset_s"] == 0.0
    assert sum(b["count"] for b in buckets) == 400 and max(b["max"] for b in buckets) < 1e6
    assert_matches(body, inside)
    # Minute buckets come from the per-session rollup, first/last included.
    wide = f"from={iso(started_ms - 30 * MINUTE_MS)}&to={iso(started_ms + MINUTE_MS)}"
    body = await owner.json(
        "GET", f"{API}/telemetry/aggregate?capture_session_id={cid}&{wide}&max_points=1"
    )
    assert body["source"] == "session_rollup_1m"
    assert_matches(body, inside)
    by_run = await owner.json(
        "GET", f"{API}/telemetry/aggregate?run_id={run['id']}&{wide}&max_points=1"
    )
    assert by_run["series"] == body["series"]


async def test_history_pages_never_skip_or_repeat(app, setup):
    owner, project, sensor = setup
    other = await create_sensor(owner, project["id"], name="second")
    base = int(time.time() * 1000) - 60_000
    ts_list = sorted(set(base + random.Random(5).randrange(0, 30_000) for _ in range(700)))
    await ingest(app, sensor["token"], [(ts, 1.0) for ts in ts_list])
    await ingest(app, other["token"], [(ts, 2.0) for ts in ts_list[::2]])  # equal timestamps
    ids = f"{sensor['id']},{other['id']}"
    seen, cursor, pages = [], None, 0
    while True:
        query = f"{API}/telemetry?sensor_ids={ids}&limit=97" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = await owner.json("GET", query)
        assert len(body["items"]) <= 97
        seen += [(ms_of(i["ts"]), i["sensor_id"]) for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = sorted(
        [(ts, sensor["id"]) for ts in ts_list] + [(ts, other["id"]) for ts in ts_list[::2]]
    )
    assert len(seen) == len(set(seen)) == len(expected)
    assert seen == expected
    assert pages == -(-len(expected) // 97)


async def test_foreign_and_missing_objects_answer_the_same_404(app, setup):
    owner, _project, sensor = setup
    stranger = await register(app)
    for query in (
        f"sensor_ids={sensor['id']}",
        f"sensor_ids={uuid.uuid4()}",
        f"run_id={uuid.uuid4()}",
        f"capture_session_id={uuid.uuid4()}",
    ):
        for path in ("telemetry", "telemetry/aggregate", "telemetry/export", "telemetry/stream"):
            response = await stranger.call("GET", f"{API}/{path}?{query}")
            body = await response.get_json()
            assert response.status_code == 404, (path, query, body)
            assert sensor["id"] not in body["error"]["message"]
    # Readable once a member (a viewer is enough), and through one readable sensor only.
    await add_member(owner, _project["id"], stranger, "viewer")
    await stranger.json("GET", f"{API}/telemetry?sensor_ids={sensor['id']}")
    await stranger.json("GET", f"{API}/telemetry?sensor_ids={sensor['id']},{uuid.uuid4()}", 404)


async def test_exports_stream_a_manifest_then_every_row(app, setup):
    owner, _project, sensor = setup
    start_ms = int(time.time() * 1000) - 5 * MINUTE_MS
    points = [(start_ms + i * 10, float(i)) for i in range(12_345)]
    await ingest(app, sensor["token"], points)
    window = f"sensor_ids={sensor['id']}&from={iso(start_ms)}&to={iso(start_ms + 10 * MINUTE_MS)}"
    response = await owner.call("GET", f"{API}/telemetry/export?{window}&format=csv")
    assert response.status_code == 200
    text = (await response.get_data()).decode()
    first, rest = text.split("\n", 1)
    manifest = orjson.loads(first.removeprefix("# "))
    assert manifest["row_count"] == 12_345
    assert manifest["sensors"][0]["id"] == sensor["id"]
    rows = list(csv.DictReader(io.StringIO(rest)))
    assert len(rows) == 12_345 and rows[-1]["raw_value"] == "12344.0"
    response = await owner.call("GET", f"{API}/telemetry/export?{window}&format=json")
    lines = (await response.get_data()).splitlines()
    assert orjson.loads(lines[0])["manifest"]["row_count"] == 12_345 and len(lines) == 12_346
    assert orjson.loads(lines[1])["raw_value"] == 0.0


async def test_parquet_exports_carry_the_manifest(app, setup):
    pq = pytest.importorskip("pyarrow.parquet")
    owner, _project, sensor = setup
    start_ms = int(time.time() * 1000) - MINUTE_MS
    await ingest(app, sensor["token"], [(start_ms + i, float(i)) for i in range(7000)])
    response = await owner.call(
        "GET", f"{API}/telemetry/export?sensor_ids={sensor['id']}&format=parquet"
    )
    table = pq.read_table(io.BytesIO(await response.get_data()))
    assert table.num_rows == 7000 and table.column("raw_value").to_pylist()[-1] == 6999.0
    assert orjson.loads(table.schema.metadata[b"etp.manifest"])["row_count"] == 7000


async def test_big_exports_become_jobs(app, db, settings, setup):
    owner, _project, sensor = setup
    app.app.config["ETP_EXPORT_STREAM_MAX_ROWS"] = 10
    start_ms = int(time.time() * 1000) - MINUTE_MS
    await ingest(app, sensor["token"], [(start_ms + i, float(i)) for i in range(11)])
    body = await owner.json(
        "GET", f"{API}/telemetry/export?sensor_ids={sensor['id']}&format=json", 202
    )
    assert body["status"] == "queued" and body["params"]["row_count"] == 11
    assert (
        await db.fetchval("SELECT format FROM exports WHERE id = $1", uuid.UUID(body["id"]))
        == "json"
    )
    redis = aioredis.from_url(settings.redis_url)
    try:
        queued = await redis.zrange(arq_queue(), 0, -1)
        job = await redis.get(f"arq:job:export:{body['id']}")
    finally:
        await redis.aclose()
    assert queued == [f"export:{body['id']}".encode()] and job is not None
    assert RUN_EXPORT.encode() in job
