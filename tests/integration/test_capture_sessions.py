"""Capture sessions: start/stop (repeatable), the one-running rule under concurrent starts,
the status machine, delete rules, roles, audit, and the window the actor reads."""

import asyncio
import uuid

import pytest

from core import capture as domain
from core.errors import Conflict
from core.principal import AuditContext
from tests.integration.helpers import add_member, create_project, register
from tests.integration.test_runs import insert_sensor, new_run, set_status

API = "/api/v1"


async def _setup(app):
    owner = await register(app)
    project = await create_project(owner)
    exp = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "exp"}
    )
    run = await new_run(owner, exp["id"])
    return owner, project, exp, run


async def start(user, run_id, expect=201, **kwargs):
    return await user.json("POST", f"{API}/runs/{run_id}/capture-sessions", expect, **kwargs)


async def stop(user, session_id, expect=200):
    return await user.json("POST", f"{API}/capture-sessions/{session_id}/stop", expect)


async def insert_session(db, run, ordinal, status, previous=None):
    return await db.fetchval(
        "INSERT INTO capture_sessions (run_id, project_id, ordinal, status, previous_status, "
        "started_at, stopped_at) VALUES ($1, $2, $3, $4, $5, "
        "CASE WHEN $4 <> 'draft' THEN now() END, "
        "CASE WHEN $4 NOT IN ('draft', 'running') THEN now() END) RETURNING id",
        uuid.UUID(run["id"]),
        uuid.UUID(run["project_id"]),
        ordinal,
        status,
        previous,
    )


async def test_start_stop_and_repeat_answer_with_the_current_state(app, db):
    owner, _project, _exp, run = await _setup(app)
    first = await start(owner, run["id"], json={"notes": "bench A"})
    assert (first["ordinal"], first["status"], first["notes"]) == (1, "running", "bench A")
    assert first["started_at"] is not None and first["stopped_at"] is None
    run_now = await owner.json("GET", f"{API}/runs/{run['id']}")
    assert run_now["status"] == "running" and run_now["started_at"] is not None

    again = await start(owner, run["id"], 200)  # a double click: the same session, no error
    assert again["id"] == first["id"]

    stopped = await stop(owner, first["id"])
    assert stopped["status"] == "succeeded" and stopped["stopped_at"] >= stopped["started_at"]
    assert stopped["duration_seconds"] >= 0
    assert await stop(owner, first["id"]) == stopped  # stopping twice: the same answer

    second = await start(owner, run["id"])
    assert second["ordinal"] == 2 and second["id"] != first["id"]
    listed = await owner.json("GET", f"{API}/runs/{run['id']}/capture-sessions?limit=1")
    assert [s["ordinal"] for s in listed["items"]] == [1]
    rest = await owner.json(
        "GET", f"{API}/runs/{run['id']}/capture-sessions?cursor={listed['next_cursor']}"
    )
    assert [s["ordinal"] for s in rest["items"]] == [2] and rest["next_cursor"] is None
    assert (await owner.json("GET", f"{API}/capture-sessions/{second['id']}"))["ordinal"] == 2

    events = await db.fetch(
        "SELECT action, entity_type, before, after, actor_role FROM audit_events "
        "WHERE entity_type IN ('capture_session', 'run') AND action <> 'run.created' ORDER BY id"
    )
    assert [(e["action"], e["entity_type"]) for e in events] == [
        ("run.status_changed", "run"),
        ("capture_session.started", "capture_session"),
        ("capture_session.stopped", "capture_session"),
        ("capture_session.started", "capture_session"),
    ]
    assert events[0]["before"] == {"status": "draft"}
    assert events[2]["after"]["status"] == "succeeded" and events[2]["actor_role"] == "owner"


async def test_concurrent_starts_create_exactly_one_session(app, db):
    owner, _project, exp, _run = await _setup(app)
    for attempt, clicks in enumerate([2, 2, 2, 2, 8]):
        run = await new_run(owner, exp["id"], name=f"race-{attempt}")
        responses = await asyncio.gather(
            *(owner.call("POST", f"{API}/runs/{run['id']}/capture-sessions") for _ in range(clicks))
        )
        bodies = [await r.get_json() for r in responses]
        assert sorted(r.status_code for r in responses) == [200] * (clicks - 1) + [201], bodies
        assert len({body["id"] for body in bodies}) == 1
        count = await db.fetchval(
            "SELECT count(*) FROM capture_sessions WHERE run_id = $1", uuid.UUID(run["id"])
        )
        assert count == 1
        starts = await db.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'run.status_changed' "
            "AND entity_id = $1",
            run["id"],
        )
        assert starts == 1  # the run started once

    # And two concurrent stops end it once.
    responses = await asyncio.gather(
        owner.call("POST", f"{API}/capture-sessions/{bodies[0]['id']}/stop"),
        owner.call("POST", f"{API}/capture-sessions/{bodies[0]['id']}/stop"),
    )
    assert [r.status_code for r in responses] == [200, 200]
    stops = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'capture_session.stopped'"
    )
    assert stops == 1


async def test_start_is_refused_on_ended_runs_and_archived_experiments(app):
    owner, _project, exp, _run = await _setup(app)
    for status in ("succeeded", "failed", "archived"):
        run = await new_run(owner, exp["id"], name=status)
        for step in {"succeeded": ["running", "succeeded"], "failed": ["running", "failed"]}.get(
            status, ["running", "succeeded", "archived"]
        ):
            await set_status(owner, run["id"], step)
        error = await start(owner, run["id"], 409)
        assert error["error"]["details"]["run_status"] == status
        assert status in error["error"]["message"]
    draft = await new_run(owner, exp["id"], name="draft")
    done = await new_run(owner, exp["id"], name="done")
    await set_status(owner, done["id"], "running")
    await set_status(owner, done["id"], "succeeded")
    await owner.json("POST", f"{API}/experiments/{exp['id']}/archive")
    error = await start(owner, draft["id"], 409)
    assert "archived" in error["error"]["message"]
    assert (await owner.json("GET", f"{API}/runs/{draft['id']}"))["status"] == "draft"


async def test_stop_and_delete_rules_for_every_status(app, db):
    owner, _project, _exp, run = await _setup(app)
    await set_status(owner, run["id"], "running")
    ids = {}
    for ordinal, status in enumerate(domain.CAPTURE_STATUSES, start=1):
        ids[status] = await insert_session(db, run, ordinal, status, previous="succeeded")
    error = await stop(owner, ids["draft"], 409)
    assert error["error"]["details"]["current_status"] == "draft"
    for status in ("succeeded", "failed", "archived", "backfilling"):
        assert (await stop(owner, ids[status]))["status"] == status  # answered as it is
    for status in ("running", "succeeded", "archived", "backfilling"):
        error = await owner.json("DELETE", f"{API}/capture-sessions/{ids[status]}", 409)
        assert error["error"]["details"]["allowed"] == ["draft", "failed"]
        assert status in error["error"]["message"]
    for status in ("draft", "failed"):
        response = await owner.call("DELETE", f"{API}/capture-sessions/{ids[status]}")
        assert response.status_code == 204
        await owner.json("GET", f"{API}/capture-sessions/{ids[status]}", 404)
    await owner.json("DELETE", f"{API}/capture-sessions/{uuid.uuid4()}", 404)
    deleted = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'capture_session.deleted'"
    )
    assert deleted == 2


@pytest.mark.parametrize("current", domain.CAPTURE_STATUSES)
async def test_every_capture_transition_from(app, db, current):
    """The whole status machine through the domain (start/stop cover the API's part)."""
    owner, _project, _exp, run = await _setup(app)
    audit = AuditContext(actor_id=uuid.UUID(owner.id), request_id="t")
    for ordinal, target in enumerate(domain.CAPTURE_STATUSES, start=1):
        await db.execute(
            "UPDATE capture_sessions SET status = 'archived' WHERE run_id = $1 "
            "AND status = 'running'",
            uuid.UUID(run["id"]),
        )
        session_id = await insert_session(db, run, ordinal, current, previous="succeeded")
        legal = domain.capture_transition_error(current, target, previous="succeeded") is None
        if target == current:
            row = await domain.change_capture_status(
                db, capture_session_id=session_id, status=target, role="owner", audit=audit
            )
            assert row["status"] == current
        elif legal:
            row = await domain.change_capture_status(
                db, capture_session_id=session_id, status=target, role="owner", audit=audit
            )
            assert (row["status"], row["previous_status"]) == (target, current)
            if current == "running":
                assert row["stopped_at"] is not None
        else:
            with pytest.raises(Conflict) as refused:
                await domain.change_capture_status(
                    db, capture_session_id=session_id, status=target, role="owner", audit=audit
                )
            assert refused.value.details["current_status"] == current
            status = await db.fetchval(
                "SELECT status FROM capture_sessions WHERE id = $1", session_id
            )
            assert status == current


async def test_roles_and_the_window_for_the_actor(app, db):
    owner, project, _exp, run = await _setup(app)
    viewer, stranger = await register(app), await register(app)
    await add_member(owner, project["id"], viewer, "viewer")
    error = await start(viewer, run["id"], 403)
    assert error["error"]["code"] == "forbidden"
    await start(stranger, run["id"], 404)
    sensor = await insert_sensor(db, project["id"])
    await owner.json("PUT", f"{API}/runs/{run['id']}/sensors", json={"sensor_ids": [str(sensor)]})
    session = await start(owner, run["id"])
    assert (await viewer.json("GET", f"{API}/capture-sessions/{session['id']}"))["id"]
    await stranger.json("GET", f"{API}/capture-sessions/{session['id']}", 404)
    await stop(viewer, session["id"], 403)
    await stranger.json("POST", f"{API}/capture-sessions/{session['id']}/stop", 404)

    window = await domain.fetch_capture_window(db, capture_session_id=uuid.UUID(session["id"]))
    assert window.sensor_ids == (sensor,) and window.stopped_at is None
    assert str(window.run_id) == run["id"] and window.status == "running"
    running = await domain.list_running_capture_windows(db)
    assert [w.capture_session_id for w in running] == [window.capture_session_id]
    await stop(owner, session["id"])
    window = await domain.fetch_capture_window(db, capture_session_id=uuid.UUID(session["id"]))
    assert window.stopped_at is not None and window.status == "succeeded"
    row = await domain.record_capture_summary(
        db, capture_session_id=window.capture_session_id, summary={"points": 5}
    )
    assert row["summary"] == {"points": 5}
    assert await domain.list_running_capture_windows(db) == []
