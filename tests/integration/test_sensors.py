"""Sensors through the real app: tokens shown once, rotation, deletion, access, sharing."""

import asyncio
import hashlib
import uuid

import orjson
import redis.asyncio as aioredis

from core.security import token_hash
from core.sensors import SensorTokenCache, resolve_sensor_token
from core.stores.ingest_errors import insert_ingest_errors
from tests.integration.helpers import add_member, create_project, create_sensor, register


def _services(app):
    return app.app.extensions["etp"]


async def _next_message(pubsub, timeout_s: float = 5.0):
    """The next published message (subscribe confirmations are skipped)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            return message
    raise AssertionError("no message was published")


async def test_the_token_is_shown_once_and_only_its_hash_is_stored(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(
        owner,
        project["id"],
        name="thermo",
        type="temperature",
        input_unit="mV",
        display_unit="°C",
        expected_rate_hz=10,
        description="bench probe",
    )
    token = sensor["token"]
    assert token.startswith("etps_") and len(token) >= 5 + 43  # 32 random bytes, base64url
    assert sensor["token_preview"] == token[:9] + "…"
    assert sensor["status"] == "never_seen" and sensor["points_last_minute"] == 0
    assert sensor["shared"] is False and sensor["shared_project_ids"] == []
    stored = await db.fetchrow(
        "SELECT token_hash, token_preview FROM sensors WHERE id = $1", uuid.UUID(sensor["id"])
    )
    assert bytes(stored["token_hash"]) == hashlib.sha256(token.encode()).digest()
    # Never again: not in a read, a list, or the audit log.
    for path in (f"/api/v1/sensors/{sensor['id']}", f"/api/v1/projects/{project['id']}/sensors"):
        response = await owner.call("GET", path)
        assert response.status_code == 200
        raw = await response.get_data(as_text=True)
        assert token not in raw and '"token"' not in raw
    audit = await db.fetch("SELECT before::text b, after::text a FROM audit_events")
    assert all(token not in (r["a"] or "") + (r["b"] or "") for r in audit)
    created = await db.fetchrow(
        "SELECT actor_role, after FROM audit_events WHERE action = 'sensor.created'"
    )
    assert created["actor_role"] == "owner" and created["after"]["name"] == "thermo"


async def test_rotation_refuses_the_old_token_at_once_and_drops_cached_lookups(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    old = sensor["token"]
    old_identity = await resolve_sensor_token(db, old)
    assert old_identity is not None and str(old_identity.sensor_id) == sensor["id"]
    # This process's cache (used by ingest) and another process's, fed through Redis.
    local = SensorTokenCache()
    _services(app).extras["sensor_token_cache"] = local
    local.put(token_hash(old), old_identity)
    remote = SensorTokenCache()
    remote.put(token_hash(old), old_identity)
    listener = aioredis.from_url(_services(app).settings.redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("events:sensor-tokens")
    try:
        rotated = await owner.json("POST", f"/api/v1/sensors/{sensor['id']}/rotate-token")
        message = await _next_message(pubsub)
        remote.handle_message(message["data"])
    finally:
        await pubsub.aclose()
        await listener.aclose()
    new = rotated["token"]
    assert new != old and new.startswith("etps_")
    assert rotated["token_preview"] == new[:9] + "…"
    assert rotated["previous_token_expires_at"] is None
    assert await resolve_sensor_token(db, old) is None
    assert (await resolve_sensor_token(db, new)).sensor_id == old_identity.sensor_id
    assert local.get(token_hash(old)) is None
    assert remote.get(token_hash(old)) is None
    assert orjson.loads(message["data"]) == {"sensor_id": sensor["id"]}
    read = await owner.json("GET", f"/api/v1/sensors/{sensor['id']}")
    assert "token" not in read and read["token_preview"] == rotated["token_preview"]
    entry = await db.fetchrow(
        "SELECT after FROM audit_events WHERE action = 'sensor.token_rotated'"
    )
    assert entry["after"] == {"token_preview": rotated["token_preview"], "grace_period_s": 0}


async def test_a_grace_period_keeps_the_old_token_until_it_expires(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    old = sensor["token"]
    rotated = await owner.json(
        "POST", f"/api/v1/sensors/{sensor['id']}/rotate-token", json={"grace_period_s": 120}
    )
    assert rotated["previous_token_expires_at"] is not None
    still = await resolve_sensor_token(db, old)
    assert still is not None and still.via_previous_token
    assert 100 < still.valid_for_s <= 120
    assert not (await resolve_sensor_token(db, rotated["token"])).via_previous_token
    # Time passes (moved in the database): the grace period is over.
    await db.execute(
        "UPDATE sensors SET previous_token_expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(sensor["id"]),
    )
    assert await resolve_sensor_token(db, old) is None
    assert await resolve_sensor_token(db, rotated["token"]) is not None
    for body in (
        {"grace_period_s": 601},
        {"grace_period_s": -1},
        {"grace_period_s": "5"},
        {"grace": 5},
    ):
        await owner.json("POST", f"/api/v1/sensors/{sensor['id']}/rotate-token", 422, json=body)


async def test_deleted_sensors_tokens_are_refused(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    identity = await resolve_sensor_token(db, sensor["token"])
    cache = SensorTokenCache()
    _services(app).extras["sensor_token_cache"] = cache
    cache.put(token_hash(sensor["token"]), identity)
    response = await owner.call("DELETE", f"/api/v1/sensors/{sensor['id']}")
    assert response.status_code == 204
    assert await resolve_sensor_token(db, sensor["token"]) is None
    assert cache.get(token_hash(sensor["token"])) is None
    await owner.json("GET", f"/api/v1/sensors/{sensor['id']}", 404)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'sensor.deleted' AND entity_id = $1",
            sensor["id"],
        )
        == 1
    )
    assert await resolve_sensor_token(db, "etps_" + "A" * 43) is None
    assert await resolve_sensor_token(db, "not-a-sensor-token") is None


async def test_deleting_a_sensor_in_a_running_capture_session_is_409(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    pid, sid = uuid.UUID(project["id"]), uuid.UUID(sensor["id"])
    experiment = await db.fetchval(
        "INSERT INTO experiments (project_id, name) VALUES ($1, 'e') RETURNING id", pid
    )
    run = await db.fetchval(
        "INSERT INTO runs (experiment_id, project_id, name, status) "
        "VALUES ($1, $2, 'r', 'running') RETURNING id",
        experiment,
        pid,
    )
    await db.execute("INSERT INTO run_sensors (run_id, sensor_id) VALUES ($1, $2)", run, sid)
    session = await db.fetchval(
        "INSERT INTO capture_sessions (run_id, project_id, ordinal, status, started_at) "
        "VALUES ($1, $2, 1, 'running', now()) RETURNING id",
        run,
        pid,
    )
    body = await owner.json("DELETE", f"/api/v1/sensors/{sensor['id']}", 409)
    assert body["error"]["details"]["capture_session_ids"] == [str(session)]
    assert await resolve_sensor_token(db, sensor["token"]) is not None
    await db.execute("UPDATE capture_sessions SET status = 'succeeded' WHERE id = $1", session)
    response = await owner.call("DELETE", f"/api/v1/sensors/{sensor['id']}")
    assert response.status_code == 204


async def test_foreign_projects_get_404_and_roles_are_enforced(app):
    owner = await register(app)
    stranger = await register(app)
    viewer = await register(app)
    editor = await register(app)
    project = await create_project(owner)
    await add_member(owner, project["id"], viewer, "viewer")
    await add_member(owner, project["id"], editor, "editor")
    sensor = await create_sensor(owner, project["id"])
    base = f"/api/v1/sensors/{sensor['id']}"
    for method, path in (
        ("GET", base),
        ("PATCH", base),
        ("DELETE", base),
        ("POST", base + "/rotate-token"),
        ("GET", base + "/errors"),
        ("PUT", base + "/projects"),
        ("GET", f"/api/v1/projects/{project['id']}/sensors"),
        ("POST", f"/api/v1/projects/{project['id']}/sensors"),
        ("GET", f"/api/v1/sensors/{uuid.uuid4()}"),
    ):
        response = await stranger.call(method, path, json={"name": "x", "project_ids": []})
        assert response.status_code == 404, (method, path, response.status_code)
        assert (await response.get_json())["error"]["code"] == "not_found"
    # Viewers read; editors also write; only owners rotate, share and delete.
    await viewer.json("GET", base)
    await viewer.json("POST", f"/api/v1/projects/{project['id']}/sensors", 403, json={"name": "v"})
    await viewer.json("PATCH", base, 403, json={"name": "v"})
    await editor.json("PATCH", base, 200, json={"name": "renamed"})
    await editor.json("POST", base + "/rotate-token", 403)
    await editor.json("DELETE", base, 403)
    await editor.json("PUT", base + "/projects", 403, json={"project_ids": []})


async def test_sharing_allows_reads_from_the_other_project_but_not_writes(app, db):
    owner = await register(app)
    other_owner = await register(app)
    reader = await register(app)
    home = await create_project(owner, "home")
    other = await create_project(other_owner, "other")
    await add_member(other_owner, other["id"], reader, "owner")
    sensor = await create_sensor(owner, home["id"], name="shared one")
    base = f"/api/v1/sensors/{sensor['id']}"
    # The home owner is not in "other": sharing into it is refused, naming the project.
    body = await owner.json("PUT", base + "/projects", 404, json={"project_ids": [other["id"]]})
    assert body["error"]["details"]["project_id"] == other["id"]
    assert other["id"] in body["error"]["message"]
    await add_member(other_owner, other["id"], owner, "viewer")
    await reader.json("GET", base, 404)
    shared = await owner.json("PUT", base + "/projects", json={"project_ids": [other["id"]] * 2})
    assert shared["project_ids"] == [other["id"]]
    # Reads work from the other project (even for its owner, who is nobody in home) ...
    read = await reader.json("GET", base)
    assert read["shared"] is True and "shared_project_ids" not in read
    listed = await reader.json("GET", f"/api/v1/projects/{other['id']}/sensors")
    assert [s["id"] for s in listed["items"]] == [sensor["id"]]
    assert listed["items"][0]["shared"] is True
    await reader.json("GET", base + "/errors")
    await reader.json("GET", base + "/profiles")
    # ... changes only from home.
    await reader.json("PATCH", base, 404, json={"name": "hijack"})
    await reader.json("POST", base + "/rotate-token", 404)
    await reader.json("DELETE", base, 404)
    await reader.json(
        "POST", base + "/profiles", 404, json={"kind": "linear", "payload": {"a": 1, "b": 0}}
    )
    assert (await owner.json("GET", base))["name"] == "shared one"
    assert (await owner.json("GET", base))["shared_project_ids"] == [other["id"]]
    await owner.json("PUT", base + "/projects", 422, json={"project_ids": [home["id"]]})
    actions = {r["action"] for r in await db.fetch("SELECT action FROM audit_events")}
    assert {"sensor.shared", "sensor.share_added"} <= actions
    # Unsharing ends the other project's access.
    await owner.json("PUT", base + "/projects", json={"project_ids": []})
    await reader.json("GET", base, 404)
    listed = await reader.json("GET", f"/api/v1/projects/{other['id']}/sensors")
    assert listed["items"] == []


async def test_updates_are_validated_audited_and_can_clear_optional_fields(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], expected_rate_hz=5, burst_points=10)
    base = f"/api/v1/sensors/{sensor['id']}"
    updated = await owner.json(
        "PATCH", base, json={"expected_rate_hz": None, "display_unit": "bar", "burst_points": None}
    )
    assert updated["expected_rate_hz"] is None and updated["burst_points"] is None
    assert updated["display_unit"] == "bar"
    entry = await db.fetchrow(
        "SELECT before, after FROM audit_events WHERE action='sensor.updated'"
    )
    assert entry["before"]["expected_rate_hz"] == 5.0 and entry["after"]["display_unit"] == "bar"
    cases = [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"input_unit": "u" * 33}, "input_unit"),
        ({"expected_rate_hz": 0}, "expected_rate_hz"),
        ({"expected_rate_hz": 100_000.5}, "expected_rate_hz"),
        ({"expected_rate_hz": "10"}, "expected_rate_hz"),
        ({"rate_points_per_s": -5}, "rate_points_per_s"),
        ({"burst_points": 1.5}, "burst_points"),
        ({"colour": "red"}, "colour"),
    ]
    for body, field in cases:
        error = (await owner.json("PATCH", base, 422, json=body))["error"]
        named = error["details"].get("field") or error["details"]["fields"][0]["loc"][-1]
        assert named == field, (body, error)
    create = f"/api/v1/projects/{project['id']}/sensors"
    await owner.json("POST", create, 422, json={"type": "t"})
    await owner.json("POST", create, 422, json={"name": "n", "expected_rate_hz": 1e6})
    await owner.json("POST", create, 422, json={"name": "n", "token": "etps_mine"})


async def test_list_filters_by_type_text_and_status_with_cursor_pages(app, db):
    owner = await register(app)
    project = await create_project(owner)
    names = []
    for i in range(5):
        sensor = await create_sensor(
            owner,
            project["id"],
            name=f"probe-{i}",
            type="temp" if i % 2 else "pressure",
            description="north_wall" if i == 3 else "",
        )
        names.append(sensor["name"])
    base = f"/api/v1/projects/{project['id']}/sensors"
    seen, cursor = [], None
    while True:
        page = await owner.json("GET", base + "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [s["name"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names[::-1]
    temp = await owner.json("GET", base + "?type=temp")
    assert sorted(s["name"] for s in temp["items"]) == ["probe-1", "probe-3"]
    text = await owner.json("GET", base + "?q=north_")
    assert [s["name"] for s in text["items"]] == ["probe-3"]
    assert (await owner.json("GET", base + "?q=%25"))["items"] == []  # a literal '%'
    # Heartbeats, as the telemetry pipeline records them.
    await db.execute(
        "UPDATE sensors SET last_seen_at = now() - CASE name WHEN 'probe-0' THEN interval '1 s' "
        "WHEN 'probe-1' THEN interval '30 s' WHEN 'probe-2' THEN interval '5 min' END "
        "WHERE name IN ('probe-0', 'probe-1', 'probe-2')"
    )
    by_status = {}
    for status in ("online", "delayed", "offline", "never_seen"):
        items = (await owner.json("GET", f"{base}?status={status}"))["items"]
        by_status[status] = sorted(s["name"] for s in items)
        assert all(s["status"] == status for s in items)
    assert by_status == {
        "online": ["probe-0"],
        "delayed": ["probe-1"],
        "offline": ["probe-2"],
        "never_seen": ["probe-3", "probe-4"],
    }
    await owner.json("GET", base + "?status=asleep", 422)
    await owner.json("GET", base + "?cursor=garbage", 422)


async def test_points_last_minute_comes_from_the_rollup(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    sid = uuid.UUID(sensor["id"])
    # Previous minute 60 points, current minute 30, an older minute that must not count.
    await db.execute(
        "INSERT INTO telemetry_1m (sensor_id, bucket, count, raw_sum, raw_min, raw_max, "
        "raw_first, raw_last, first_ts, last_ts) "
        "SELECT $1, b, c, 0, 0, 0, 0, 0, b, b FROM (VALUES "
        "(date_trunc('minute', now()), 30), "
        "(date_trunc('minute', now()) - interval '1 minute', 60), "
        "(date_trunc('minute', now()) - interval '5 minutes', 1000)) AS v(b, c)",
        sid,
    )
    read = await owner.json("GET", f"/api/v1/sensors/{sensor['id']}")
    assert 30 <= read["points_last_minute"] <= 90
    listed = await owner.json("GET", f"/api/v1/projects/{project['id']}/sensors")
    assert 30 <= listed["items"][0]["points_last_minute"] <= 90


async def test_the_error_journal_pages_newest_first(app, db):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    sid = uuid.UUID(sensor["id"])
    await insert_ingest_errors(
        db,
        sensor_id=sid,
        errors=[("invalid_value", f"bad value {i}", i, "x" * 500) for i in range(5)],
    )
    base = f"/api/v1/sensors/{sensor['id']}/errors"
    first = await owner.json("GET", base + "?limit=3")
    assert [e["point_index"] for e in first["items"]] == [4, 3, 2]
    assert len(first["items"][0]["sample"]) == 200
    second = await owner.json("GET", f"{base}?limit=3&cursor={first['next_cursor']}")
    assert [e["point_index"] for e in second["items"]] == [1, 0]
    assert second["next_cursor"] is None
