"""Conversion profiles: versions, the state machine, one active at any instant, selection."""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core import profiles as domain
from core.conversion import NO_PROFILE, compile_profile, profile_applying_at
from core.db import connect
from core.errors import Conflict
from core.principal import AuditContext
from tests.integration.helpers import add_member, create_project, create_sensor, register

LINEAR = {"kind": "linear", "payload": {"a": 2, "b": 1}}
AUDIT = AuditContext(actor_id=None, request_id="test")


@pytest.fixture
async def sensor_setup(app):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    return owner, project, sensor


async def _new(owner, sensor, body=LINEAR):
    return await owner.json("POST", f"/api/v1/sensors/{sensor['id']}/profiles", 201, json=body)


async def _actives(db, sensor_id) -> list:
    return await db.fetch(
        "SELECT id, version FROM conversion_profiles WHERE sensor_id = $1 AND status = 'active'",
        uuid.UUID(sensor_id),
    )


async def test_profiles_are_versioned_drafts_with_strictly_validated_payloads(
    app, db, sensor_setup
):
    owner, _project, sensor = sensor_setup
    first = await _new(owner, sensor)
    second = await _new(
        owner,
        sensor,
        {
            "kind": "table",
            "payload": {"points": [[0, 0], [10, 100]], "out_of_range": "reject"},
            "description": "bench calibration",
        },
    )
    assert (first["version"], first["status"]) == (1, "draft")
    assert first["payload"] == {"a": 2.0, "b": 1.0}
    assert (second["version"], second["description"]) == (2, "bench calibration")
    base = f"/api/v1/sensors/{sensor['id']}/profiles"
    for body, fragment in (
        ({"kind": "cubic", "payload": {}}, "unknown kind"),
        ({"kind": "linear", "payload": {"a": 1}}, "b is required"),
        ({"kind": "linear", "payload": {"a": "1", "b": 0}}, "finite number"),
        ({"kind": "table", "payload": {"points": [[1, 0], [0, 1]]}}, "greater than"),
        ({"kind": "polynomial", "payload": {"coefficients": [1] * 11}}, "at most 10"),
        ({"kind": "linear", "payload": [1, 2]}, "must be an object"),
    ):
        error = (await owner.json("POST", base, 422, json=body))["error"]
        assert fragment in error["message"], (body, error)
    await owner.json("POST", base, 422, json={"kind": "linear"})
    listed = await owner.json("GET", base + "?limit=1")
    assert [p["version"] for p in listed["items"]] == [2]
    rest = await owner.json("GET", f"{base}?limit=1&cursor={listed['next_cursor']}")
    assert [p["version"] for p in rest["items"]] == [1] and rest["next_cursor"] is None
    assert (await owner.json("GET", f"/api/v1/profiles/{first['id']}"))["id"] == first["id"]
    await owner.json("GET", f"/api/v1/profiles/{uuid.uuid4()}", 404)
    created = await db.fetchval("SELECT count(*) FROM audit_events WHERE action='profile.created'")
    assert created == 2


async def test_the_state_machine_through_the_api(app, db, sensor_setup):
    owner, _project, sensor = sensor_setup
    v1, v2, v3 = [await _new(owner, sensor) for _ in range(3)]
    # Draft -> active.
    a1 = await owner.json("POST", f"/api/v1/profiles/{v1['id']}/activate")
    assert a1["status"] == "active" and a1["sensor_active_profile_id"] == v1["id"]
    assert a1["valid_from"] is not None and a1["valid_to"] is None and "notice" not in a1
    # Another activation deprecates v1 at the instant v2 starts.
    a2 = await owner.json("POST", f"/api/v1/profiles/{v2['id']}/activate")
    assert a2["deprecated_profile_id"] == v1["id"]
    old = await owner.json("GET", f"/api/v1/profiles/{v1['id']}")
    assert old["status"] == "deprecated" and old["valid_to"] == a2["valid_from"]
    # Not allowed: 409 with the current status and what is allowed from it.
    for path, status, allowed in (
        (f"{v1['id']}/activate", "deprecated", []),
        (f"{v2['id']}/activate", "active", ["deprecate"]),
        (f"{v3['id']}/deprecate", "draft", ["activate", "schedule"]),
    ):
        error = (await owner.json("POST", f"/api/v1/profiles/{path}", 409))["error"]
        assert error["details"] == {"status": status, "allowed": allowed}
    # Schedule: only with a future time, with an offset.
    schedule = f"/api/v1/profiles/{v3['id']}/schedule"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        "future"
        in (await owner.json("POST", schedule, 422, json={"valid_from": past}))["error"]["message"]
    )
    naive = (datetime.now() + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    await owner.json("POST", schedule, 422, json={"valid_from": naive})
    await owner.json("POST", schedule, 422, json={"valid_from": "tomorrow"})
    later = datetime.now(UTC) + timedelta(hours=1)
    s3 = await owner.json("POST", schedule, json={"valid_from": later.isoformat()})
    assert s3["status"] == "scheduled" and s3["sensor_active_profile_id"] == v2["id"]
    assert datetime.fromisoformat(s3["valid_from"]) == later
    # Deprecating the active profile leaves the sensor without one, and says so.
    d2 = await owner.json("POST", f"/api/v1/profiles/{v2['id']}/deprecate")
    assert d2["status"] == "deprecated" and d2["sensor_active_profile_id"] is None
    assert "no_profile" in d2["notice"]
    assert await _actives(db, sensor["id"]) == []
    # A scheduled profile deprecated before its time never applies (empty window).
    d3 = await owner.json("POST", f"/api/v1/profiles/{v3['id']}/deprecate")
    assert d3["valid_to"] == d3["valid_from"]
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM audit_events WHERE entity_type = 'conversion_profile' ORDER BY id"
        )
    ]
    assert actions == ["profile.created"] * 3 + [
        "profile.activated",
        "profile.activated",
        "profile.scheduled",
        "profile.deprecated",
        "profile.deprecated",
    ]


async def test_viewers_read_profiles_and_editors_change_them(app, sensor_setup):
    owner, project, sensor = sensor_setup
    viewer = await register(app)
    editor = await register(app)
    await add_member(owner, project["id"], viewer, "viewer")
    await add_member(owner, project["id"], editor, "editor")
    draft = await _new(owner, sensor)
    await viewer.json("GET", f"/api/v1/profiles/{draft['id']}")
    await viewer.json("POST", f"/api/v1/profiles/{draft['id']}/activate", 403)
    await viewer.json("POST", f"/api/v1/sensors/{sensor['id']}/profiles", 403, json=LINEAR)
    await editor.json("POST", f"/api/v1/profiles/{draft['id']}/activate")
    stranger = await register(app)
    await stranger.json("GET", f"/api/v1/profiles/{draft['id']}", 404)
    await stranger.json("POST", f"/api/v1/profiles/{draft['id']}/deprecate", 404)


async def test_exactly_one_profile_is_active_under_concurrent_activation(
    app, db, settings, sensor_setup
):
    owner, _project, sensor = sensor_setup
    drafts = [await _new(owner, sensor) for _ in range(3)]
    # Through the api: all at once.
    responses = await asyncio.gather(
        *(owner.call("POST", f"/api/v1/profiles/{d['id']}/activate") for d in drafts)
    )
    assert {r.status_code for r in responses} <= {200, 409}
    assert any(r.status_code == 200 for r in responses)
    assert len(await _actives(db, sensor["id"])) == 1
    # Through core on separate connections, while a watcher checks every instant it can.
    conns = [await connect(settings) for _ in range(3)]
    stop = asyncio.Event()
    worst = 0

    async def watch() -> None:
        nonlocal worst
        while not stop.is_set():
            worst = max(worst, len(await _actives(db, sensor["id"])))
            await asyncio.sleep(0)

    async def activate(conn, profile_id):
        try:
            return await domain.activate_profile(
                conn, profile_id=uuid.UUID(profile_id), role="owner", audit=AUDIT
            )
        except Conflict:
            return None

    watcher = asyncio.create_task(watch())
    try:
        for _ in range(3):
            fresh = [await _new(owner, sensor) for _ in conns]
            results = await asyncio.gather(
                *(activate(c, d["id"]) for c, d in zip(conns, fresh, strict=True))
            )
            assert any(r is not None for r in results)
        # The same profile twice at once: one wins, the other is told it is active already.
        draft = await _new(owner, sensor)
        twice = await asyncio.gather(*(activate(c, draft["id"]) for c in conns[:2]))
        assert sorted(r is None for r in twice) == [False, True]
    finally:
        stop.set()
        await watcher
        for conn in conns:
            await conn.close()
    assert worst == 1
    actives = await _actives(db, sensor["id"])
    assert len(actives) == 1 and str(actives[0]["id"]) == draft["id"]
    # Windows never overlap: each deprecated profile ends where a later one starts.
    rows = await db.fetch(
        "SELECT valid_from, valid_to FROM conversion_profiles WHERE sensor_id = $1 "
        "AND status <> 'draft' ORDER BY valid_from, version",
        uuid.UUID(sensor["id"]),
    )
    for earlier, later in itertools.pairwise(rows):
        assert earlier["valid_to"] is not None and earlier["valid_to"] <= later["valid_from"]


async def test_the_profile_applying_at_a_timestamp(app, db, sensor_setup):
    owner, _project, sensor = sensor_setup
    sid = uuid.UUID(sensor["id"])
    v1 = await _new(owner, sensor)
    v2 = await _new(owner, sensor, {"kind": "polynomial", "payload": {"coefficients": [0, 0, 1]}})
    v3 = await _new(owner, sensor, {"kind": "linear", "payload": {"a": 10, "b": 0}})
    draft = await _new(owner, sensor)
    before_any = datetime.now(UTC) - timedelta(seconds=1)
    await owner.json("POST", f"/api/v1/profiles/{v1['id']}/activate")
    a2 = await owner.json("POST", f"/api/v1/profiles/{v2['id']}/activate")
    switch = datetime.fromisoformat(a2["valid_from"])
    future = datetime.now(UTC) + timedelta(hours=2)
    await owner.json(
        "POST", f"/api/v1/profiles/{v3['id']}/schedule", json={"valid_from": future.isoformat()}
    )
    profiles = await domain.profiles_applying(db, sid)
    assert [p["version"] for p in profiles] == [1, 2, 3]  # no drafts
    assert draft["id"] not in {str(p["id"]) for p in profiles}

    def version_at(ts):
        chosen = profile_applying_at(profiles, ts)
        return chosen["version"] if chosen else None

    assert version_at(before_any) is None  # -> NO_PROFILE: physical = raw
    assert version_at(switch - timedelta(microseconds=1)) == 1
    assert version_at(switch) == 2  # valid_to is exclusive
    assert version_at(future - timedelta(seconds=1)) == 2
    assert version_at(future) == 3  # a scheduled profile applies from its valid_from
    chosen = profile_applying_at(profiles, switch)
    assert compile_profile(chosen["kind"], chosen["payload"]).convert(3.0) == (9.0, "ok")
    assert NO_PROFILE.convert(3.0) == (3.0, "no_profile")
    # The same through the api.
    base = f"/api/v1/sensors/{sensor['id']}/profiles/applying?at="
    at_switch = await owner.json("GET", base + switch.isoformat().replace("+", "%2B"))
    assert at_switch["profile"]["version"] == 2
    earlier = await owner.json("GET", base + before_any.isoformat().replace("+", "%2B"))
    assert earlier["profile"] is None and earlier["conversion_status"] == "no_profile"
    await owner.json("GET", base + "yesterday", 422)


async def test_due_scheduled_profiles_are_activated_by_the_worker_function(app, db, sensor_setup):
    owner, _project, sensor = sensor_setup
    sid = uuid.UUID(sensor["id"])
    v1, v2, v3 = [await _new(owner, sensor) for _ in range(3)]
    await owner.json("POST", f"/api/v1/profiles/{v1['id']}/activate")
    soon = datetime.now(UTC) + timedelta(minutes=10)
    later = soon + timedelta(minutes=10)
    await owner.json(
        "POST", f"/api/v1/profiles/{v2['id']}/schedule", json={"valid_from": soon.isoformat()}
    )
    await owner.json(
        "POST", f"/api/v1/profiles/{v3['id']}/schedule", json={"valid_from": later.isoformat()}
    )
    # Nothing is due yet.
    assert await domain.activate_due_scheduled_profiles(db, now=datetime.now(UTC)) == []
    # The worker runs a little late, after the first is due: only that one switches, and its
    # window starts at the scheduled time, not at the worker's.
    changes = await domain.activate_due_scheduled_profiles(db, now=soon + timedelta(seconds=7))
    assert [(str(c.profile["id"]), str(c.deprecated_profile_id)) for c in changes] == [
        (v2["id"], v1["id"])
    ]
    assert changes[0].profile["valid_from"] == soon
    old = await db.fetchrow(
        "SELECT status, valid_to FROM conversion_profiles WHERE id = $1", uuid.UUID(v1["id"])
    )
    assert (old["status"], old["valid_to"]) == ("deprecated", soon)
    # Much later both would be due; the second switches now and nothing happens twice.
    changes = await domain.activate_due_scheduled_profiles(db, now=later + timedelta(hours=1))
    assert [str(c.profile["id"]) for c in changes] == [v3["id"]]
    assert await domain.activate_due_scheduled_profiles(db, now=later + timedelta(hours=2)) == []
    actives = await _actives(db, sensor["id"])
    assert [str(a["id"]) for a in actives] == [v3["id"]]
    entry = await db.fetchrow(
        "SELECT actor_id, after FROM audit_events WHERE action = 'profile.activated' "
        "AND entity_id = $1",
        v3["id"],
    )
    assert entry["actor_id"] is None and entry["after"]["scheduled"] is True
    windows = await domain.profiles_applying(db, sid)
    assert profile_applying_at(windows, soon + timedelta(minutes=5))["version"] == 2
    assert profile_applying_at(windows, later)["version"] == 3
