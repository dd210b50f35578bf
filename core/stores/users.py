"""Users, their browser sessions, API tokens, password resets and the mail outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

USER_COLUMNS = "id, email, display_name, is_active, created_at, updated_at"


async def insert_user(
    conn: asyncpg.Connection, *, email: str, display_name: str, password_hash: str
) -> Record:
    row = await conn.fetchrow(
        f"INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3) "
        f"RETURNING {USER_COLUMNS}",
        email,
        display_name,
        password_hash,
    )
    assert row is not None
    return row


async def fetch_user(conn: asyncpg.Connection, *, user_id: UUID) -> Record | None:
    return await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)


async def fetch_user_by_email(conn: asyncpg.Connection, *, email: str) -> Record | None:
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1", email
    )


async def fetch_password_hash(conn: asyncpg.Connection, *, user_id: UUID) -> str | None:
    return await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)


async def update_password(conn: asyncpg.Connection, *, user_id: UUID, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, password_changed_at = now(), updated_at = now() "
        "WHERE id = $1",
        user_id,
        password_hash,
    )


async def update_display_name(
    conn: asyncpg.Connection, *, user_id: UUID, display_name: str
) -> Record | None:
    return await conn.fetchrow(
        f"UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1 "
        f"RETURNING {USER_COLUMNS}",
        user_id,
        display_name,
    )


# Sessions ------------------------------------------------------------------------------------

SESSION_COLUMNS = "id, user_id, created_at, last_seen_at, expires_at, user_agent, client_ip"


async def insert_session(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    token_hash: bytes,
    expires_at: datetime,
    user_agent: str | None,
    client_ip: str | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO user_sessions (user_id, token_hash, expires_at, user_agent, client_ip) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {SESSION_COLUMNS}",
        user_id,
        token_hash,
        expires_at,
        user_agent,
        client_ip,
    )
    assert row is not None
    return row


async def fetch_live_session(
    conn: asyncpg.Connection, *, token_hash: bytes, idle_timeout_s: int
) -> Record | None:
    """The session with this token if it is neither revoked, expired nor idle too long."""
    return await conn.fetchrow(
        f"SELECT s.{SESSION_COLUMNS.replace(', ', ', s.')}, u.email, u.display_name "
        "FROM user_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() "
        "AND s.last_seen_at > now() - make_interval(secs => $2) AND u.is_active",
        token_hash,
        idle_timeout_s,
    )


async def touch_session(conn: asyncpg.Connection, *, session_id: UUID) -> None:
    await conn.execute(
        "UPDATE user_sessions SET last_seen_at = now() WHERE id = $1 "
        "AND last_seen_at < now() - interval '30 seconds'",
        session_id,
    )


async def list_sessions(conn: asyncpg.Connection, *, user_id: UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT {SESSION_COLUMNS} FROM user_sessions WHERE user_id = $1 AND revoked_at IS NULL "
        "AND expires_at > now() ORDER BY last_seen_at DESC",
        user_id,
    )


async def revoke_session(conn: asyncpg.Connection, *, user_id: UUID, session_id: UUID) -> bool:
    result = await conn.execute(
        "UPDATE user_sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2 "
        "AND revoked_at IS NULL",
        session_id,
        user_id,
    )
    return result != "UPDATE 0"


async def revoke_sessions_except(
    conn: asyncpg.Connection, *, user_id: UUID, keep_session_id: UUID | None
) -> list[UUID]:
    rows = await conn.fetch(
        "UPDATE user_sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL "
        "AND ($2::uuid IS NULL OR id <> $2) RETURNING id",
        user_id,
        keep_session_id,
    )
    return [row["id"] for row in rows]


# API tokens ----------------------------------------------------------------------------------

TOKEN_COLUMNS = "id, user_id, name, preview, created_at, expires_at, last_used_at, revoked_at"


async def insert_api_token(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    name: str,
    token_hash: bytes,
    preview: str,
    expires_at: datetime | None,
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO api_tokens (user_id, name, token_hash, preview, expires_at) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLUMNS}",
        user_id,
        name,
        token_hash,
        preview,
        expires_at,
    )
    assert row is not None
    return row


async def fetch_live_api_token(conn: asyncpg.Connection, *, token_hash: bytes) -> Record | None:
    return await conn.fetchrow(
        "SELECT t.id, t.user_id, t.last_used_at, u.email, u.display_name "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = $1 AND t.revoked_at IS NULL "
        "AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.is_active",
        token_hash,
    )


async def touch_api_token(conn: asyncpg.Connection, *, token_id: UUID) -> None:
    await conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = $1 "
        "AND (last_used_at IS NULL OR last_used_at < now() - interval '30 seconds')",
        token_id,
    )


async def list_api_tokens(conn: asyncpg.Connection, *, user_id: UUID) -> list[Record]:
    return await conn.fetch(
        f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL "
        "ORDER BY created_at DESC",
        user_id,
    )


async def revoke_api_token(
    conn: asyncpg.Connection, *, user_id: UUID, token_id: UUID
) -> Record | None:
    return await conn.fetchrow(
        f"UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 "
        f"AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}",
        token_id,
        user_id,
    )


# Password resets and mail --------------------------------------------------------------------


async def insert_password_reset(
    conn: asyncpg.Connection, *, user_id: UUID, token_hash: bytes, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES ($1, $2, $3)",
        user_id,
        token_hash,
        expires_at,
    )


async def consume_password_reset(conn: asyncpg.Connection, *, token_hash: bytes) -> UUID | None:
    """Marks a valid reset token used and returns its user; ``None`` if unusable."""
    return await conn.fetchval(
        "UPDATE password_resets SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL "
        "AND expires_at > now() RETURNING user_id",
        token_hash,
    )


async def insert_mail(
    conn: asyncpg.Connection, *, to_email: str, subject: str, body: str, sent: bool
) -> int:
    value: Any = await conn.fetchval(
        "INSERT INTO mail_outbox (to_email, subject, body, sent_at) "
        "VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END) RETURNING id",
        to_email,
        subject,
        body,
        sent,
    )
    return int(value)
