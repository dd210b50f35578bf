"""``/auth``: register, login, logout, me, sessions, password change and reset, API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, Response, g, request
from quart_auth import logout_user
from quart_schema import validate_request

from api.context import audit_context, principal
from api.idempotency import idempotent
from api.policy import public, user
from api.responses import json_response
from api.security import (
    LoginLimiter,
    csrf_token_for,
    login_as,
    set_csrf_cookie,
)
from api.state import services
from core import identity
from core.errors import NotFound
from core.mail import make_mailer
from core.stores import users as users_store

bp = Blueprint("auth", __name__)


class RegisterIn(BaseModel):
    email: str = Field(max_length=320)
    display_name: str = Field(max_length=120)
    password: str = Field(max_length=1024)


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class PasswordChangeIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PasswordResetIn(BaseModel):
    email: str = Field(max_length=320)


class PasswordResetConfirmIn(BaseModel):
    token: str = Field(max_length=200)
    new_password: str = Field(max_length=1024)


class TokenIn(BaseModel):
    name: str = Field(max_length=100)
    expires_at: datetime | None = None


def user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "display_name": row["display_name"],
        "created_at": row["created_at"],
    }


def _limiter() -> LoginLimiter:
    state = services()
    limiter = state.extras.get("login_limiter")
    if limiter is None:
        assert state.redis is not None
        limiter = LoginLimiter(state.settings, state.redis.connection_pool)
        state.extras["login_limiter"] = limiter
    return limiter


async def _signed_in_response(user_row: Any, status: int) -> Response:
    """Starts a fresh session (a new id on every login) and sets both cookies."""
    settings = services().settings
    async with services().database.acquire() as conn:
        secret, _ = await identity.start_session(
            conn,
            user_id=user_row["id"],
            settings=settings,
            user_agent=request.headers.get("User-Agent"),
            client_ip=request.remote_addr,
        )
    login_as(secret)
    csrf = csrf_token_for(settings, secret)
    response = json_response({"user": user_json(user_row), "csrf_token": csrf}, status=status)
    set_csrf_cookie(response, settings, csrf)
    return response


@bp.post("/auth/register")
@public
@validate_request(RegisterIn)
async def register(data: RegisterIn) -> Response:
    """Creates an account and signs it in."""
    async with services().database.acquire() as conn:
        row = await identity.register_user(
            conn, email=data.email, display_name=data.display_name, password=data.password
        )
    return await _signed_in_response(row, 201)


@bp.post("/auth/login")
@public
@validate_request(LoginIn)
async def login(data: LoginIn) -> Response:
    """Signs in; any previous session id in the cookie is replaced by a new one."""
    await _limiter().hit(email=data.email, address=request.remote_addr or "unknown")
    async with services().database.acquire() as conn:
        row = await identity.authenticate(
            conn, email=data.email, password=data.password, audit=audit_context()
        )
    await _limiter().reset_account(data.email)
    return await _signed_in_response(row, 200)


@bp.post("/auth/logout")
@user
async def logout() -> Response:
    """Revokes the session server-side and clears the cookies."""
    async with services().database.acquire() as conn:
        await identity.end_session(conn, principal=principal())
    logout_user()
    response = Response(status=204)
    set_csrf_cookie(response, services().settings, None)
    return response


@bp.get("/auth/me")
@user
async def me() -> Response:
    caller = principal()
    async with services().database.acquire() as conn:
        row = await users_store.fetch_user(conn, user_id=caller.user_id)
    assert row is not None
    body: dict[str, Any] = {"user": user_json(row), "auth": caller.via}
    secret = getattr(g, "session_secret", None)
    if secret:
        body["csrf_token"] = csrf_token_for(services().settings, secret)
    return json_response(body)


@bp.get("/auth/sessions")
@user
async def list_sessions() -> Response:
    caller = principal()
    async with services().database.acquire() as conn:
        rows = await users_store.list_sessions(conn, user_id=caller.user_id)
    items = [
        {
            **{
                k: row[k]
                for k in (
                    "id",
                    "created_at",
                    "last_seen_at",
                    "expires_at",
                    "user_agent",
                    "client_ip",
                )
            },
            "current": row["id"] == caller.session_id,
        }
        for row in rows
    ]
    return json_response({"items": items, "next_cursor": None})


@bp.delete("/auth/sessions/<uuid:session_id>")
@user
async def revoke_session(session_id: UUID) -> Response:
    caller = principal()
    async with services().database.acquire() as conn:
        if not await users_store.revoke_session(
            conn, user_id=caller.user_id, session_id=session_id
        ):
            raise NotFound("session not found")
    return Response(status=204)


@bp.post("/auth/password")
@user
@validate_request(PasswordChangeIn)
async def change_password(data: PasswordChangeIn) -> Response:
    """Changes the password and ends every other session of the account."""
    async with services().database.acquire() as conn:
        ended = await identity.change_password(
            conn,
            principal=principal(),
            current_password=data.current_password,
            new_password=data.new_password,
        )
    return json_response({"ended_sessions": len(ended)})


@bp.post("/auth/password-reset")
@public
@validate_request(PasswordResetIn)
async def password_reset(data: PasswordResetIn) -> Response:
    """Mails a reset link if the account exists; the answer is the same either way."""
    await _limiter().hit(email=data.email, address=request.remote_addr or "unknown")
    state = services()
    async with state.database.acquire() as conn:
        await identity.request_password_reset(
            conn, email=data.email, mailer=make_mailer(state.settings), settings=state.settings
        )
    return json_response(
        {"status": "if the account exists, a reset link is on its way"}, status=202
    )


@bp.post("/auth/password-reset/confirm")
@public
@validate_request(PasswordResetConfirmIn)
async def password_reset_confirm(data: PasswordResetConfirmIn) -> Response:
    async with services().database.acquire() as conn:
        await identity.confirm_password_reset(
            conn, token=data.token, new_password=data.new_password
        )
    return Response(status=204)


def token_json(row: Any) -> dict[str, Any]:
    return {
        k: row[k] for k in ("id", "name", "preview", "created_at", "expires_at", "last_used_at")
    }


@bp.get("/auth/tokens")
@user
async def list_tokens() -> Response:
    async with services().database.acquire() as conn:
        rows = await users_store.list_api_tokens(conn, user_id=principal().user_id)
    return json_response({"items": [token_json(r) for r in rows], "next_cursor": None})


@bp.post("/auth/tokens")
@user
@idempotent
@validate_request(TokenIn)
async def create_token(data: TokenIn) -> Response:
    """Creates a personal API token; the token itself is in this response only."""
    async with services().database.acquire() as conn:
        token, row = await identity.create_api_token(
            conn,
            principal=principal(),
            name=data.name,
            expires_at=data.expires_at,
            audit=audit_context(),
        )
    return json_response({**token_json(row), "token": token}, status=201)


@bp.delete("/auth/tokens/<uuid:token_id>")
@user
async def revoke_token(token_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        await identity.revoke_api_token(
            conn, principal=principal(), token_id=token_id, audit=audit_context()
        )
    return Response(status=204)
