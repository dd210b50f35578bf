"""Every registered route × every kind of caller answers as its declared policy says.

Routes come from the app's URL map, so a new route is covered the moment it exists; a route
without a declared policy, or with a URL variable this test cannot fill, fails the test.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from api.policy import endpoint_policy
from core.authz import ACTION_MIN_ROLE, ROLES
from core.security import new_token
from tests.integration.helpers import ApiUser, register

CALLERS = ("anonymous", "revoked_session", "revoked_token", "foreign", "viewer", "editor", "owner")
SKIP_METHODS = {"HEAD", "OPTIONS"}


@dataclass
class World:
    ids: dict[str, str]


async def build_world(db: Any, owner: ApiUser, members: dict[str, ApiUser]) -> World:
    """One project with one object of every kind, created directly (setup, not under test)."""
    owner_id = uuid.UUID(owner.id)
    pid = await db.fetchval(
        "INSERT INTO projects (name, created_by) VALUES ('m', $1) RETURNING id", owner_id
    )
    for role, user in (("owner", owner), *((r, members[r]) for r in ("viewer", "editor"))):
        await db.execute(
            "INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)",
            pid,
            uuid.UUID(user.id),
            role,
        )
    eid = await db.fetchval(
        "INSERT INTO experiments (project_id, name) VALUES ($1, 'e') RETURNING id", pid
    )
    rid = await db.fetchval(
        "INSERT INTO runs (experiment_id, project_id, name) VALUES ($1, $2, 'r') RETURNING id",
        eid,
        pid,
    )
    cid = await db.fetchval(
        "INSERT INTO capture_sessions (run_id, project_id, ordinal, status) "
        "VALUES ($1, $2, 1, 'draft') RETURNING id",
        rid,
        pid,
    )
    _token, digest, preview = new_token("etps_")
    sid = await db.fetchval(
        "INSERT INTO sensors (project_id, name, token_hash, token_preview) "
        "VALUES ($1, 's', $2, $3) RETURNING id",
        pid,
        digest,
        preview,
    )
    prof = await db.fetchval(
        "INSERT INTO conversion_profiles (sensor_id, version, kind, payload) "
        "VALUES ($1, 1, 'linear', '{\"a\": 1, \"b\": 0}'::jsonb) RETURNING id",
        sid,
    )
    wid = await db.fetchval(
        "INSERT INTO webhook_subscriptions (project_id, url, secret) "
        "VALUES ($1, 'https://example.com/h', 'whsec_x') RETURNING id",
        pid,
    )
    aid = await db.fetchval(
        "INSERT INTO artifacts (run_id, project_id, name, storage_key) "
        "VALUES ($1, $2, 'a', $3) RETURNING id",
        rid,
        pid,
        f"test/{uuid.uuid4()}",
    )
    xid = await db.fetchval(
        "INSERT INTO exports (project_id, kind, format) VALUES ($1, 'runs', 'csv') RETURNING id",
        pid,
    )
    ids = {
        "project_id": pid,
        "experiment_id": eid,
        "run_id": rid,
        "capture_session_id": cid,
        "sensor_id": sid,
        "profile_id": prof,
        "webhook_id": wid,
        "artifact_id": aid,
        "export_id": xid,
        "user_id": uuid.UUID(members["viewer"].id),
    }
    return World({k: str(v) for k, v in ids.items()})


# URL variables that are the caller's own objects rather than project objects.
OWN_OBJECT_VARIABLES = {"session_id", "token_id", "comparison_id"}
# Project objects visible only to the member who made them (an export job's file).
PRIVATE_OBJECT_VARIABLES = {"export_id"}


def fill(rule: Any, world: World) -> str:
    values = {}
    for name in rule.arguments:
        if name in world.ids:
            values[name] = world.ids[name]
        elif name == "path":  # the web app's client-side routes
            values[name] = "projects/some-page"
        elif name in OWN_OBJECT_VARIABLES:
            values[name] = str(uuid.uuid4())  # somebody else's / missing: 404 when allowed
        else:
            pytest.fail(f"{rule.rule}: no test object for URL variable {name!r}; add one")
    path = re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", lambda m: values[m[1]], rule.rule)
    assert "<" not in path, f"{rule.rule}: unfilled variable"
    return path


async def call(app: Any, method: str, path: str, caller: str, users: dict[str, Any]) -> int:
    client = app.test_client()
    headers: dict[str, str] = {}
    if caller == "revoked_session":
        client = users["revoked_session"]
        headers["X-CSRF-Token"] = users["revoked_session_csrf"]
    elif caller == "revoked_token":
        headers["Authorization"] = f"Bearer {users['revoked_token']}"
    elif caller != "anonymous":
        headers["Authorization"] = f"Bearer {users[caller].token}"
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    response = await client.open(path, method=method, **kwargs)
    return response.status_code


def expected_ok(policy_kind: str, action: str | None, caller: str) -> bool:
    if caller in ("anonymous", "revoked_session", "revoked_token"):
        return False
    if policy_kind == "user":
        return True
    assert action is not None
    if caller == "foreign":
        return False
    return ROLES.index(caller) >= ROLES.index(ACTION_MIN_ROLE[action])


@pytest.mark.timeout(600)
async def test_every_route_answers_every_caller_by_its_policy(app, db):
    users: dict[str, Any] = {role: await register(app) for role in ("viewer", "editor", "owner")}
    users["foreign"] = await register(app)
    await users["foreign"].json("POST", "/api/v1/projects", 201, json={"name": "theirs"})
    gone = await register(app)
    users["revoked_token"] = gone.token
    tokens = await gone.json("GET", "/api/v1/auth/tokens")
    await gone.json("DELETE", f"/api/v1/auth/tokens/{tokens['items'][0]['id']}", 204)
    ended = await register(app)
    users["revoked_session"] = ended.browser
    users["revoked_session_csrf"] = ended.csrf
    await ended.browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": ended.csrf})

    quart_app = app.app
    checked = 0
    failures: list[str] = []
    for rule in quart_app.url_map.iter_rules():
        policy = endpoint_policy(quart_app, rule.endpoint)
        if policy is None:
            failures.append(f"{rule.rule}: no access policy declared")
            continue
        methods = sorted(set(rule.methods or ()) - SKIP_METHODS)
        for method in methods:
            world = await build_world(db, users["owner"], users)
            path = fill(rule, world)
            first_allowed_done = False
            for caller in CALLERS:
                status = await call(app, method, path, caller, users)
                checked += 1
                label = f"{method} {rule.rule} as {caller}: {status}"
                if status >= 500:
                    failures.append(f"{label} (server error)")
                    continue
                if policy.kind == "public":
                    if status in (401, 403) and rule.endpoint != "ingest.ingest":
                        failures.append(f"{label} (public route refused)")
                    continue
                if policy.kind == "sensor":
                    if status != 401:
                        failures.append(f"{label} (sensor route without a sensor token)")
                    continue
                if caller in ("anonymous", "revoked_session", "revoked_token"):
                    if status != 401:
                        failures.append(f"{label} (expected 401)")
                elif expected_ok(policy.kind, policy.action, caller):
                    allowed_404 = method == "DELETE" and first_allowed_done
                    own = bool(
                        set(rule.arguments) & (OWN_OBJECT_VARIABLES | PRIVATE_OBJECT_VARIABLES)
                    )
                    if status in (401, 403) or (status == 404 and not allowed_404 and not own):
                        failures.append(f"{label} (expected to be allowed)")
                    first_allowed_done = True
                elif caller == "foreign":
                    if status != 404:
                        failures.append(f"{label} (expected 404 for another project's object)")
                elif status != 403:
                    failures.append(f"{label} (expected 403 for a weaker role)")
    assert checked > 100
    assert not failures, "\n".join(failures)
