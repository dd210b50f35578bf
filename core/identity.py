"""Accounts, sessions, API tokens and password resets: the rules, on top of the stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from core.mail import Mailer
from core.principal import AuditContext, Principal
from core.security import (
    check_password_policy,
    hash_password,
    needs_rehash,
    new_token,
    normalise_email,
    token_hash,
    verify_password,
)
from core.settings import Settings
from core.stores import audit as audit_store
from core.stores import users as users_store

SESSION_TOKEN_BYTES = 32
API_TOKEN_PREFIX = "etpu_"
RESET_TOKEN_PREFIX = "etpr_"
RESET_TOKEN_TTL = timedelta(minutes=30)
DISPLAY_NAME_MAX = 120


def _display_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > DISPLAY_NAME_MAX:
        raise InvalidInput(
            f"display_name must have 1 to {DISPLAY_NAME_MAX} characters",
            details={"field": "display_name"},
        )
    return value


async def register_user(
    conn: asyncpg.Connection, *, email: str, display_name: str, password: str
) -> asyncpg.Record:
    email = normalise_email(email)
    check_password_policy(password, email=email)
    try:
        async with conn.transaction():
            return await users_store.insert_user(
                conn,
                email=email,
                display_name=_display_name(display_name),
                password_hash=hash_password(password),
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "an account with this email already exists", details={"field": "email"}
        ) from None


async def authenticate(
    conn: asyncpg.Connection, *, email: str, password: str, audit: AuditContext
) -> asyncpg.Record:
    """The user for these credentials; one answer (and similar timing) for every failure."""
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        normalised = email.strip().lower()
    user = await users_store.fetch_user_by_email(conn, email=normalised)
    ok = verify_password(user["password_hash"] if user else None, password)
    if not ok or user is None or not user["is_active"]:
        await audit_store.insert_audit_event(
            conn,
            project_id=None,
            actor_id=user["id"] if user else None,
            actor_role=None,
            action="auth.login_failed",
            entity_type="user",
            entity_id=user["id"] if user else None,
            after={"email": normalised},
            request_id=audit.request_id,
        )
        raise Unauthenticated("wrong email or password")
    if needs_rehash(user["password_hash"]):
        await users_store.update_password(
            conn, user_id=user["id"], password_hash=hash_password(password)
        )
    return user


async def start_session(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    settings: Settings,
    user_agent: str | None,
    client_ip: str | None,
) -> tuple[str, asyncpg.Record]:
    """A new server-side session; returns (the secret session id for the cookie, the row)."""
    secret, digest, _ = new_token("", SESSION_TOKEN_BYTES)
    row = await users_store.insert_session(
        conn,
        user_id=user_id,
        token_hash=digest,
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.session_absolute_timeout_s),
        user_agent=(user_agent or "")[:300] or None,
        client_ip=client_ip,
    )
    return secret, row


async def resolve_session(
    conn: asyncpg.Connection, *, secret: str, settings: Settings
) -> Principal | None:
    row = await users_store.fetch_live_session(
        conn, token_hash=token_hash(secret), idle_timeout_s=settings.session_idle_timeout_s
    )
    if row is None:
        return None
    await users_store.touch_session(conn, session_id=row["id"])
    return Principal(
        user_id=row["user_id"],
        email=row["email"],
        display_name=row["display_name"],
        via="session",
        session_id=row["id"],
    )


async def end_session(conn: asyncpg.Connection, *, principal: Principal) -> None:
    if principal.session_id is not None:
        await users_store.revoke_session(
            conn, user_id=principal.user_id, session_id=principal.session_id
        )


async def resolve_api_token(conn: asyncpg.Connection, *, token: str) -> Principal | None:
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    row = await users_store.fetch_live_api_token(conn, token_hash=token_hash(token))
    if row is None:
        return None
    await users_store.touch_api_token(conn, token_id=row["id"])
    return Principal(
        user_id=row["user_id"],
        email=row["email"],
        display_name=row["display_name"],
        via="token",
        token_id=row["id"],
    )


async def create_api_token(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    name: str,
    expires_at: datetime | None,
    audit: AuditContext,
) -> tuple[str, asyncpg.Record]:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name must have 1 to 100 characters", details={"field": "name"})
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at must be in the future", details={"field": "expires_at"})
    token, digest, preview = new_token(API_TOKEN_PREFIX)
    async with conn.transaction():
        row = await users_store.insert_api_token(
            conn,
            user_id=principal.user_id,
            name=name,
            token_hash=digest,
            preview=preview,
            expires_at=expires_at,
        )
        await audit_store.insert_audit_event(
            conn,
            project_id=None,
            actor_id=principal.user_id,
            actor_role=None,
            action="api_token.created",
            entity_type="api_token",
            entity_id=row["id"],
            after={"name": name, "preview": preview},
            request_id=audit.request_id,
        )
    return token, row


async def revoke_api_token(
    conn: asyncpg.Connection, *, principal: Principal, token_id: UUID, audit: AuditContext
) -> None:
    async with conn.transaction():
        row = await users_store.revoke_api_token(conn, user_id=principal.user_id, token_id=token_id)
        if row is None:
            raise NotFound("token not found")
        await audit_store.insert_audit_event(
            conn,
            project_id=None,
            actor_id=principal.user_id,
            actor_role=None,
            action="api_token.revoked",
            entity_type="api_token",
            entity_id=token_id,
            before={"name": row["name"], "preview": row["preview"]},
            request_id=audit.request_id,
        )


async def change_password(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    current_password: str,
    new_password: str,
) -> list[UUID]:
    """Sets a new password and ends every other session; returns the ended session ids."""
    stored = await users_store.fetch_password_hash(conn, user_id=principal.user_id)
    if not verify_password(stored, current_password):
        raise InvalidInput("the current password is wrong", details={"field": "current_password"})
    check_password_policy(new_password, email=principal.email)
    async with conn.transaction():
        await users_store.update_password(
            conn, user_id=principal.user_id, password_hash=hash_password(new_password)
        )
        return await users_store.revoke_sessions_except(
            conn, user_id=principal.user_id, keep_session_id=principal.session_id
        )


async def request_password_reset(
    conn: asyncpg.Connection, *, email: str, mailer: Mailer, settings: Settings
) -> None:
    """Mails a single-use link when the account exists; callers answer the same either way."""
    try:
        normalised = normalise_email(email)
    except InvalidInput:
        return
    user = await users_store.fetch_user_by_email(conn, email=normalised)
    if user is None or not user["is_active"]:
        # Same work as the known-email path (minus the mail), so timing tells little.
        new_token(RESET_TOKEN_PREFIX)
        return
    token, digest, _ = new_token(RESET_TOKEN_PREFIX)
    await users_store.insert_password_reset(
        conn,
        user_id=user["id"],
        token_hash=digest,
        expires_at=datetime.now(UTC) + RESET_TOKEN_TTL,
    )
    link = f"{settings.base_url.rstrip('/')}/reset-password?token={token}"
    await mailer.send(
        conn,
        to=normalised,
        subject="Reset your ETP password",
        body=(
            f"Someone asked to reset the password of your ETP account.\n\n"
            f"Open this link within 30 minutes to choose a new password:\n{link}\n\n"
            "If it was not you, ignore this mail; your password stays as it is.\n"
        ),
    )


async def confirm_password_reset(
    conn: asyncpg.Connection, *, token: str, new_password: str
) -> UUID:
    """Sets the password for a valid, unused token and ends all sessions of that user."""
    async with conn.transaction():
        user_id = await users_store.consume_password_reset(conn, token_hash=token_hash(token))
        if user_id is None:
            raise InvalidInput(
                "the reset link is invalid, used or expired", details={"field": "token"}
            )
        user = await users_store.fetch_user(conn, user_id=user_id)
        assert user is not None
        check_password_policy(new_password, email=user["email"])
        await users_store.update_password(
            conn, user_id=user_id, password_hash=hash_password(new_password)
        )
        await users_store.revoke_sessions_except(conn, user_id=user_id, keep_session_id=None)
    return user_id
