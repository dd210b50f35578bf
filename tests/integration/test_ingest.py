"""The telemetry pipeline through HTTP: real app, real Ray actors, real PostgreSQL+TimescaleDB."""

import gzip
import time
import uuid

import orjson
import pytest

from tests.integration.helpers import create_project, create_sensor, register, send_points


@pytest.fixture(params=["dedicated", "packed:2"])
def settings(settings, request):
    """Every test here runs with both placements of the sensor writers."""
    return settings.replace(sensor_actors=request.param)


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def setup(app):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="thermo", expected_rate_hz=10)
    return owner, project, sensor


async def test_points_land_once_with_raw_and_physical_values(app, db, setup):
    owner, _project, sensor = setup
    profile = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": 2.0, "b": 1.0}},
    )
    await owner.json("POST", f"/api/v1/profiles/{profile['id']}/activate", 200)
    start = now_ms()
    points = [{"ts": start + i, "value": float(i)} for i in range(500)]
    response = await send_points(app, sensor["token"], points)
    body = await response.get_json()
    assert response.status_code == 202, body
    assert body == {"accepted": 500, "duplicates": 0, "rejected": []}
    rows = await db.fetch(
        "SELECT raw_value, physical_value, conversion_status, profile_version "
        "FROM telemetry WHERE sensor_id = $1 ORDER BY ts",
        uuid.UUID(sensor["id"]),
    )
    assert [r["raw_value"] for r in rows] == [float(i) for i in range(500)]
    assert [r["physical_value"] for r in rows] == [2.0 * i + 1.0 for i in range(500)]
    assert {(r["conversion_status"], r["profile_version"]) for r in rows} == {("ok", 1)}
    # A retried batch stores nothing twice and is still acknowledged.
    again = await send_points(app, sensor["token"], points)
    assert (await again.get_json()) == {"accepted": 500, "duplicates": 500, "rejected": []}
    assert await db.fetchval("SELECT count(*) FROM telemetry") == 500
    assert await db.fetchval("SELECT sum(count) FROM telemetry_1m") == 500
    rollup = await db.fetchrow(
        "SELECT sum(raw_sum) s, min(raw_min) lo, max(raw_max) hi, "
        "max(phys_max) pmax FROM telemetry_1m"
    )
    assert (rollup["s"], rollup["lo"], rollup["hi"], rollup["pmax"]) == (124750.0, 0, 499, 999)
    last_seen = await db.fetchval(
        "SELECT last_seen_at FROM sensors WHERE id = $1", uuid.UUID(sensor["id"])
    )
    assert last_seen is not None


async def test_partial_batches_answer_202_and_journal_the_rejections(app, setup):
    owner, _project, sensor = setup
    ts = now_ms()
    response = await send_points(
        app,
        sensor["token"],
        [
            {"ts": ts, "value": 1},
            {"ts": ts + 1, "value": "x"},
            {"ts": "noon", "value": 2},
            {"ts": ts + 10**9, "value": 3},
        ],
    )
    body = await response.get_json()
    assert response.status_code == 202
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "invalid_value"),
        (2, "invalid_timestamp"),
        (3, "timestamp_in_future"),
    ]
    journal = await owner.json("GET", f"/api/v1/sensors/{sensor['id']}/errors")
    assert sorted(item["code"] for item in journal["items"]) == [
        "invalid_timestamp",
        "invalid_value",
        "timestamp_in_future",
    ]


async def test_entirely_bad_requests_get_exact_4xx_and_never_5xx(app, setup):
    owner, _project, sensor = setup
    auth = {"Authorization": f"Bearer {sensor['token']}"}
    client = app.test_client()
    cases = [
        (dict(json={"points": [{"ts": now_ms(), "value": None}]}), 422),
        (dict(data=b"{not json", headers={"Content-Type": "application/json"}), 400),
        (dict(data=b"<xml/>", headers={"Content-Type": "application/xml"}), 415),
        (dict(json={"rows": []}), 422),
        (
            dict(
                data=gzip.compress(b" " * 20_000_000),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            ),
            413,
        ),
        (dict(data=b"x" * (6 * 1024 * 1024), headers={"Content-Type": "application/json"}), 413),
        (dict(json={"points": [{"ts": now_ms() + i, "value": 1} for i in range(10_001)]}), 413),
        (
            dict(
                data=b'{"points": [{"ts": 1, "value": NaN}]}',
                headers={"Content-Type": "application/json"},
            ),
            422,
        ),
    ]
    for kwargs, expected in cases:
        headers = {**auth, **kwargs.pop("headers", {})}
        response = await client.post("/api/v1/telemetry", headers=headers, **kwargs)
        body = await response.get_json()
        assert response.status_code == expected, (kwargs.keys(), body)
        assert set(body["error"]) == {"code", "message", "details", "request_id"}
    journal = await owner.json("GET", f"/api/v1/sensors/{sensor['id']}/errors?limit=100")
    codes = {item["code"] for item in journal["items"]}
    assert {"bad_request", "unsupported_media_type", "payload_too_large", "invalid_value"} <= codes


async def test_gzip_and_line_protocol_are_accepted(app, db, setup):
    _owner, _project, sensor = setup
    ts = now_ms()
    body = gzip.compress(orjson.dumps({"points": [{"ts": ts, "value": 5}]}))
    response = await app.test_client().post(
        "/api/v1/telemetry",
        data=body,
        headers={
            "Authorization": f"Bearer {sensor['token']}",
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 202
    lines = f"env,room=lab temp=21.5 {ts + 1}\nenv,room=lab temp=22i {ts + 2}\n".encode()
    response = await app.test_client().post(
        "/api/v1/telemetry?precision=ms",
        data=lines,
        headers={"Authorization": f"Bearer {sensor['token']}", "Content-Type": "text/plain"},
    )
    assert (await response.get_json()) == {"accepted": 2, "duplicates": 0, "rejected": []}
    rows = await db.fetch("SELECT raw_value, meta FROM telemetry ORDER BY ts")
    assert [r["raw_value"] for r in rows] == [5.0, 21.5, 22.0]
    assert rows[1]["meta"] == {"measurement": "env", "field": "temp", "tags": {"room": "lab"}}


async def test_tokens_are_checked(app, setup):
    owner, _project, sensor = setup
    point = [{"ts": now_ms(), "value": 1}]
    assert (await send_points(app, "etps_wrong", point)).status_code == 401
    client = app.test_client()
    assert (await client.post("/api/v1/telemetry", json={"points": point})).status_code == 401
    rotated = await owner.json("POST", f"/api/v1/sensors/{sensor['id']}/rotate-token", 200)
    assert (await send_points(app, sensor["token"], point)).status_code == 401
    assert (await send_points(app, rotated["token"], point)).status_code == 202


async def test_the_rate_limit_answers_429_with_retry_after(app, setup):
    owner, _project, sensor = setup
    await owner.json(
        "PATCH",
        f"/api/v1/sensors/{sensor['id']}",
        200,
        json={"rate_points_per_s": 5, "burst_points": 20},
    )
    ts = now_ms()
    first = await send_points(app, sensor["token"], [{"ts": ts + i, "value": i} for i in range(15)])
    assert first.status_code == 202
    assert first.headers["RateLimit-Limit"] == "20"
    second = await send_points(
        app, sensor["token"], [{"ts": ts + 100 + i, "value": i} for i in range(15)]
    )
    body = await second.get_json()
    assert second.status_code == 429, body
    assert int(second.headers["Retry-After"]) >= 1
    assert body["error"]["code"] == "rate_limited"


async def test_a_new_profile_applies_to_the_next_points_at_once(app, db, setup):
    owner, _project, sensor = setup
    first = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={"kind": "linear", "payload": {"a": 1.0, "b": 100.0}},
    )
    await owner.json("POST", f"/api/v1/profiles/{first['id']}/activate", 200)
    ts = now_ms()
    assert (await send_points(app, sensor["token"], [{"ts": ts, "value": 1}])).status_code == 202
    second = await owner.json(
        "POST",
        f"/api/v1/sensors/{sensor['id']}/profiles",
        201,
        json={
            "kind": "table",
            "payload": {"points": [[0, 0], [10, 1000]], "out_of_range": "reject"},
        },
    )
    await owner.json("POST", f"/api/v1/profiles/{second['id']}/activate", 200)
    later = now_ms() + 50
    response = await send_points(
        app, sensor["token"], [{"ts": later, "value": 5}, {"ts": later + 1, "value": 50}]
    )
    assert response.status_code == 202
    rows = await db.fetch(
        "SELECT raw_value, physical_value, conversion_status, profile_version "
        "FROM telemetry ORDER BY ts"
    )
    assert [tuple(r) for r in rows] == [
        (1.0, 101.0, "ok", 1),
        (5.0, 500.0, "ok", 2),
        (50.0, None, "out_of_range", 2),
    ]
