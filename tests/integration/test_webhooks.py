"""Webhooks end to end: the real app, a real arq worker, a loopback receiver."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from core.outbox import write_event
from core.webhooks import verify
from tests.integration.helpers import add_member, create_project, register
from tests.integration.test_outbox import Receiver, private_redis, running_worker, wait_for


@pytest.fixture
async def settings(settings, monkeypatch):
    return await private_redis(settings.replace(webhook_allowlist=("localhost",)), monkeypatch)


async def _setup(app, receiver: Receiver, event_types=("*",)):
    owner = await register(app)
    project = await create_project(owner)
    hook = await owner.json(
        "POST",
        f"/api/v1/projects/{project['id']}/webhooks",
        201,
        json={"url": receiver.url, "event_types": list(event_types), "description": "lab"},
    )
    return owner, project, hook


async def _messages(db, status: str) -> int:
    return await db.fetchval("SELECT count(*) FROM webhook_messages WHERE status = $1", status)


async def test_every_event_arrives_once_by_webhook_id_signed_despite_failing_attempts(
    app, db, settings
):
    receiver = await Receiver(fail_first=2).start()
    try:
        owner, project, hook = await _setup(app, receiver)
        assert hook["secret"].startswith("whsec_") and hook["event_types"] == ["*"]
        async with db.transaction():
            for n in range(20):
                await write_event(
                    db,
                    project_id=uuid.UUID(project["id"]),
                    event_type="run.status_changed",
                    payload={"n": n},
                )
        ping = await owner.json("POST", f"/api/v1/webhooks/{hook['id']}/test", 202)
        async with running_worker(settings):
            await wait_for(lambda: _done(db, 21), 30)
            metrics = await wait_for(lambda: _metrics_with(app, "deliver_webhook"), 10)
    finally:
        await receiver.stop()
    # Exactly one success per webhook-id; each needed three attempts.
    assert len(receiver.succeeded) == 21 and set(receiver.succeeded.values()) == {1}
    assert set(receiver.attempts.values()) == {3}
    assert ping["webhook_id"] in receiver.succeeded
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        assert verify(hook["secret"], request.headers, request.body), request.headers
        assert request.headers["content-type"] == "application/json"
        bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values()), "retries resend the same bytes"
    events = [orjson.loads(next(iter(b))) for b in bodies.values()]
    data = sorted(e["data"]["n"] for e in events if e["type"] == "run.status_changed")
    assert data == list(range(20))
    assert {e["type"] for e in events} == {"run.status_changed", "webhook.ping"}
    # Every attempt is readable through the API, newest first, in pages.
    first = await owner.json("GET", f"/api/v1/webhooks/{hook['id']}/deliveries?limit=50")
    second = await owner.json(
        "GET", f"/api/v1/webhooks/{hook['id']}/deliveries?limit=50&cursor={first['next_cursor']}"
    )
    attempts = first["items"] + second["items"]
    assert second["next_cursor"] is None and len(attempts) == 63
    assert sorted(a["status"] for a in attempts) == ["retrying"] * 42 + ["succeeded"] * 21
    retried = [a for a in attempts if a["status"] == "retrying"]
    assert {a["response_code"] for a in retried} == {500}
    assert {a["response_body"] for a in retried} == {"not yet"}
    assert all(a["latency_ms"] is not None for a in attempts)
    failed = await owner.json("GET", f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed")
    assert failed["items"] == []
    assert 'etp_jobs_total{job="deliver_webhook",outcome="retried"}' in metrics


async def _done(db, count: int) -> bool:
    return await _messages(db, "succeeded") == count


async def _metrics_with(app, job: str) -> str | None:
    response = await app.test_client().get("/metrics")
    text = (await response.get_data()).decode()
    return text if f'etp_jobs_total{{job="{job}",outcome="retried"}}' in text else None


async def test_a_rotated_secret_keeps_signing_during_its_overlap(app, db, settings):
    receiver = await Receiver().start()
    try:
        owner, _project, hook = await _setup(app, receiver)
        rotated = await owner.json(
            "POST", f"/api/v1/webhooks/{hook['id']}/rotate-secret", 200, json={"overlap_s": 600}
        )
        assert rotated["secret"] != hook["secret"] and rotated["previous_secret_expires_at"]
        listed = await owner.json("GET", f"/api/v1/webhooks/{hook['id']}")
        assert "secret" not in listed and listed["secret_preview"].endswith("…")
        await owner.json("POST", f"/api/v1/webhooks/{hook['id']}/test", 202)
        async with running_worker(settings):
            await wait_for(lambda: _done(db, 1), 15)
            final = await owner.json(
                "POST", f"/api/v1/webhooks/{hook['id']}/rotate-secret", 200, json={"overlap_s": 0}
            )
            await owner.json("POST", f"/api/v1/webhooks/{hook['id']}/test", 202)
            await wait_for(lambda: _done(db, 2), 15)
    finally:
        await receiver.stop()
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(hook["secret"], during.headers, during.body)
    assert verify(rotated["secret"], during.headers, during.body)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify(final["secret"], after.headers, after.body)
    assert not verify(rotated["secret"], after.headers, after.body)
    audit = await db.fetch("SELECT action, after FROM audit_events WHERE entity_type = 'webhook'")
    assert [a["action"] for a in audit].count("webhook.secret_rotated") == 2
    assert "whsec_" not in orjson.dumps([dict(a) for a in audit], default=str).decode()


CORPUS = [
    "http://127.0.0.1:9/hook",
    "http://[::1]:9/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:9/",
    "http://10.1.2.3/",
    "http://100.64.0.7/",
    "ftp://localhost/",
]


async def test_forbidden_targets_are_refused_and_redirects_are_not_followed(app, db, settings):
    target = await Receiver().start()  # must never be reached
    redirector = await Receiver(redirect_to=f"http://127.0.0.1:{target.port}/").start()
    guarded = await Receiver().start()
    try:
        owner, project, hook = await _setup(app, redirector)
        for url in CORPUS:
            response = await owner.call(
                "POST",
                f"/api/v1/projects/{project['id']}/webhooks",
                json={"url": url, "event_types": ["*"]},
            )
            assert response.status_code == 422, url
        # "localhost" is allowed when the subscription is made, refused by a worker whose
        # allowlist no longer names it: the check happens at delivery time, per address.
        refused = await owner.json(
            "POST",
            f"/api/v1/projects/{project['id']}/webhooks",
            201,
            json={"url": guarded.url, "event_types": ["*"]},
        )
        await owner.json("POST", f"/api/v1/webhooks/{hook['id']}/test", 202)
        async with running_worker(settings):
            await wait_for(lambda: _attempts(db, hook["id"]), 15)
        await owner.json("POST", f"/api/v1/webhooks/{refused['id']}/test", 202)
        async with running_worker(settings.replace(webhook_allowlist=())):
            await wait_for(lambda: _messages(db, "failed"), 15)
    finally:
        for receiver in (target, redirector, guarded):
            await receiver.stop()
    assert target.requests == [] and guarded.requests == []
    assert len(redirector.requests) >= 1
    redirect = (await owner.json("GET", f"/api/v1/webhooks/{hook['id']}/deliveries"))["items"]
    assert redirect[-1]["response_code"] == 307
    assert "redirect not followed" in redirect[-1]["error"]
    blocked = (await owner.json("GET", f"/api/v1/webhooks/{refused['id']}/deliveries"))["items"]
    assert [b["status"] for b in blocked] == ["failed"]
    assert "127.0.0.1 is loopback" in blocked[0]["error"] and blocked[0]["response_code"] is None


async def _attempts(db, webhook_id: str) -> int:
    return await db.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1",
        uuid.UUID(webhook_id),
    )


async def test_owners_manage_editors_read_and_inactive_subscriptions_get_nothing(app, db, settings):
    receiver = await Receiver().start()
    try:
        owner, project, hook = await _setup(app, receiver, event_types=("export.*",))
        editor, viewer, stranger = [await register(app) for _ in range(3)]
        await add_member(owner, project["id"], editor, "editor")
        await add_member(owner, project["id"], viewer, "viewer")
        base = f"/api/v1/projects/{project['id']}/webhooks"
        listed = await editor.json("GET", base)
        assert [h["id"] for h in listed["items"]] == [hook["id"]]
        assert "secret" not in listed["items"][0]
        await editor.json("POST", base, 403, json={"url": receiver.url, "event_types": ["*"]})
        await viewer.json("GET", base, 403)
        await stranger.json("GET", f"/api/v1/webhooks/{hook['id']}", 404)
        await owner.json("POST", base, 422, json={"url": receiver.url, "event_types": ["run.x"]})
        await owner.json("POST", base, 422, json={"url": receiver.url, "event_types": []})
        types = await owner.json("GET", "/api/v1/webhooks/event-types")
        assert "export.ready" in types["items"] and "sensor.status_changed" in types["items"]
        # Only matching events are fanned out; an inactive subscription gets none.
        pid = uuid.UUID(project["id"])
        await write_event(db, project_id=pid, event_type="run.status_changed", payload={})
        await write_event(db, project_id=pid, event_type="export.ready", payload={"a": 1})
        async with running_worker(settings):
            await wait_for(lambda: _done(db, 1), 15)
            patched = await owner.json(
                "PATCH", f"/api/v1/webhooks/{hook['id']}", 200, json={"is_active": False}
            )
            assert patched["is_active"] is False
            await write_event(db, project_id=pid, event_type="export.ready", payload={"a": 2})
            await wait_for(lambda: _outbox_done(db), 10)
            await asyncio.sleep(0.3)
        await owner.json("DELETE", f"/api/v1/webhooks/{hook['id']}", 204)
        await owner.json("GET", f"/api/v1/webhooks/{hook['id']}", 404)
    finally:
        await receiver.stop()
    assert [orjson.loads(r.body)["data"] for r in receiver.requests] == [{"a": 1}]
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM audit_events WHERE entity_type = 'webhook' ORDER BY id"
        )
    ]
    assert actions == ["webhook.created", "webhook.updated", "webhook.deleted"]


async def _outbox_done(db) -> bool:
    return await db.fetchval("SELECT count(*) FROM outbox WHERE done_at IS NULL") == 0
