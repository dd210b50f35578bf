"""Identity: accounts, sessions, CSRF, rate limits, password reset and API tokens."""

import re

import pytest

from tests.integration.helpers import PASSWORD, register

ORIGIN = "http://testserver.local"


async def test_register_login_me_logout(app):
    user = await register(app, email="Ada@Example.com", name="Ada")
    assert user.email == "Ada@Example.com"
    me = await user.browser.get("/api/v1/auth/me")
    body = await me.get_json()
    assert me.status_code == 200
    assert body["user"]["email"] == "ada@example.com"  # normalised
    assert body["auth"] == "session"
    response = await user.browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": user.csrf})
    assert response.status_code == 204
    assert (await user.browser.get("/api/v1/auth/me")).status_code == 401


async def test_duplicate_email_is_409_and_weak_passwords_422(app):
    await register(app, email="dup@example.com")
    client = app.test_client()
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "DUP@example.com", "display_name": "x", "password": PASSWORD},
    )
    assert response.status_code == 409
    for password, fragment in (
        ("short", "at least 8"),
        ("password123", "too common"),
        ("x" * 257, "at most 256"),
    ):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": "new@example.com", "display_name": "x", "password": password},
        )
        body = await response.get_json()
        assert response.status_code == 422, body
        assert fragment in body["error"]["message"]
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "not-an-email", "display_name": "x", "password": PASSWORD},
    )
    assert response.status_code == 422


async def test_login_rotates_the_session_and_logout_revokes_the_old_cookie(app):
    user = await register(app)
    old_cookie = user.browser.cookie_jar  # noqa: F841 (kept for clarity)
    first = app.test_client()
    r1 = await first.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r1.status_code == 200
    cookie1 = r1.headers.getlist("Set-Cookie")
    r2 = await first.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    cookie2 = r2.headers.getlist("Set-Cookie")
    session1 = next(c for c in cookie1 if c.startswith("etp_session="))
    session2 = next(c for c in cookie2 if c.startswith("etp_session="))
    assert session1.split(";")[0] != session2.split(";")[0]
    assert "HttpOnly" in session2 and "SameSite=Lax" in session2
    # Replaying the first cookie after logging it out is refused.
    replay = app.test_client()
    replay.set_cookie("testserver.local", "etp_session", session1.split(";")[0].split("=", 1)[1])
    assert (await replay.get("/api/v1/auth/me")).status_code == 200
    csrf = (await replay.get("/api/v1/auth/me")).headers  # noqa: F841
    me = await (await replay.get("/api/v1/auth/me")).get_json()
    replay.set_cookie("testserver.local", "etp_csrf", me["csrf_token"])
    out = await replay.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status_code == 204
    stale = app.test_client()
    stale.set_cookie("testserver.local", "etp_session", session1.split(";")[0].split("=", 1)[1])
    response = await stale.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "unauthenticated"


async def test_expired_and_idle_sessions_are_refused(app, db):
    user = await register(app)
    assert (await user.browser.get("/api/v1/auth/me")).status_code == 200
    await db.execute("UPDATE user_sessions SET expires_at = now() - interval '1 second'")
    assert (await user.browser.get("/api/v1/auth/me")).status_code == 401
    other = await register(app)
    await db.execute(
        "UPDATE user_sessions SET last_seen_at = now() - interval '8 days' WHERE user_id = $1",
        __import__("uuid").UUID(other.id),
    )
    assert (await other.browser.get("/api/v1/auth/me")).status_code == 401


async def test_csrf_is_required_for_unsafe_browser_requests(app):
    user = await register(app)
    no_header = await user.browser.post("/api/v1/projects", json={"name": "p"})
    assert no_header.status_code == 403
    assert (await no_header.get_json())["error"]["details"]["reason"] == "csrf"
    wrong = await user.browser.post(
        "/api/v1/projects", json={"name": "p"}, headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403
    cross = await user.browser.post(
        "/api/v1/projects",
        json={"name": "p"},
        headers={"X-CSRF-Token": user.csrf, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    ok = await user.browser.post(
        "/api/v1/projects",
        json={"name": "p"},
        headers={"X-CSRF-Token": user.csrf, "Origin": ORIGIN},
    )
    assert ok.status_code == 201
    # API tokens are not cookies: no CSRF token needed.
    assert (await user.call("POST", "/api/v1/projects", json={"name": "q"})).status_code == 201


async def test_login_is_rate_limited_with_retry_after_and_one_answer_for_all_failures(app):
    await register(app, email="target@example.com")
    client = app.test_client()
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "target@example.com", "password": "wrong pass"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert (await unknown.get_json())["error"]["message"] == (await wrong.get_json())["error"][
        "message"
    ]
    statuses = []
    for _ in range(12):
        response = await client.post(
            "/api/v1/auth/login", json={"email": "target@example.com", "password": "nope!!!!"}
        )
        statuses.append(response.status_code)
    assert statuses[:8] == [401] * 8
    assert statuses[-1] == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.get_json())["error"]["code"] == "rate_limited"


async def test_failed_logins_are_audited(app, db):
    await register(app, email="audited@example.com")
    await app.test_client().post(
        "/api/v1/auth/login", json={"email": "audited@example.com", "password": "bad pass!"}
    )
    rows = await db.fetch(
        "SELECT action, after FROM audit_events WHERE action = 'auth.login_failed'"
    )
    assert [r["after"]["email"] for r in rows] == ["audited@example.com"]


async def test_sessions_can_be_listed_and_revoked_and_password_change_ends_others(app):
    user = await register(app)
    other_browser = app.test_client()
    r = await other_browser.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    other_csrf = (await r.get_json())["csrf_token"]
    sessions = await (await user.browser.get("/api/v1/auth/sessions")).get_json()
    assert len(sessions["items"]) == 2
    assert sum(item["current"] for item in sessions["items"]) == 1
    response = await user.browser.post(
        "/api/v1/auth/password",
        headers={"X-CSRF-Token": user.csrf},
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert (await response.get_json()) == {"ended_sessions": 1}
    assert (await user.browser.get("/api/v1/auth/me")).status_code == 200
    assert (await other_browser.get("/api/v1/auth/me")).status_code == 401
    del other_csrf
    fresh = app.test_client()
    ok = await fresh.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "a brand new passphrase"}
    )
    assert ok.status_code == 200
    sessions = await (await user.browser.get("/api/v1/auth/sessions")).get_json()
    target = next(item for item in sessions["items"] if not item["current"])
    revoke = await user.browser.delete(
        f"/api/v1/auth/sessions/{target['id']}", headers={"X-CSRF-Token": user.csrf}
    )
    assert revoke.status_code == 204
    assert (await fresh.get("/api/v1/auth/me")).status_code == 401


async def test_api_tokens_are_shown_once_hashed_and_revocable(app, db):
    user = await register(app)
    created = await user.json("POST", "/api/v1/auth/tokens", 201, json={"name": "ci"})
    token = created["token"]
    assert token.startswith("etpu_") and len(token) >= 40
    listing = await user.json("GET", "/api/v1/auth/tokens")
    assert all("token" not in item for item in listing["items"])
    assert {item["name"] for item in listing["items"]} == {"tests", "ci"}
    stored = await db.fetchval("SELECT token_hash FROM api_tokens WHERE name = 'ci'")
    import hashlib

    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    me = app.test_client()
    response = await me.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (await response.get_json())["auth"] == "token"
    assert await db.fetchval("SELECT last_used_at FROM api_tokens WHERE name = 'ci'") is not None
    await user.json("DELETE", f"/api/v1/auth/tokens/{created['id']}", 204)
    response = await me.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    audit = await db.fetch(
        "SELECT action FROM audit_events WHERE entity_type = 'api_token' ORDER BY id"
    )
    assert [r["action"] for r in audit][-2:] == ["api_token.created", "api_token.revoked"]


async def test_password_reset_through_the_outbox(app, db):
    user = await register(app, email="forgetful@example.com")
    client = app.test_client()
    known = await client.post("/api/v1/auth/password-reset", json={"email": user.email})
    unknown = await client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert await known.get_json() == await unknown.get_json()
    mails = await db.fetch("SELECT to_email, body FROM mail_outbox")
    assert [m["to_email"] for m in mails] == ["forgetful@example.com"]
    link = re.search(r"(https?://\S+)", mails[0]["body"])[1]
    assert link.startswith("http://testserver.local/reset-password?token=")
    token = link.split("token=")[1]
    done = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset passphrase ok"},
    )
    assert done.status_code == 204
    assert (await user.browser.get("/api/v1/auth/me")).status_code == 401  # sessions ended
    again = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "another passphrase"},
    )
    assert again.status_code == 422
    login = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "reset passphrase ok"}
    )
    assert login.status_code == 200


async def test_an_expired_reset_token_is_refused(app, db):
    user = await register(app)
    await app.test_client().post("/api/v1/auth/password-reset", json={"email": user.email})
    body = await db.fetchval("SELECT body FROM mail_outbox")
    token = body.split("token=")[1].split()[0]
    await db.execute("UPDATE password_resets SET expires_at = now() - interval '1 second'")
    response = await app.test_client().post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset passphrase ok"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("header", ["Bearer etpu_notarealtoken", "Bearer ", "Basic abc"])
async def test_bad_authorization_headers_are_401(app, header):
    response = await app.test_client().get("/api/v1/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
