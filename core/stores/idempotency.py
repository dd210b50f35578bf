"""Idempotency keys: one row per (caller, route, key) holding the first request's outcome."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from asyncpg import Record

KEY_TTL_S = 24 * 3600
# A key still "in progress" after this long belongs to a request that died (its process was
# killed between claiming the key and recording the answer); a retry may take it over.
IN_PROGRESS_STALE_S = 120


async def claim_key(
    conn: asyncpg.Connection,
    *,
    scope: str,
    route: str,
    key: str,
    request_hash: bytes,
    ttl_s: int = KEY_TTL_S,
    stale_after_s: int = IN_PROGRESS_STALE_S,
) -> bool:
    """Takes the key for a new request; False when a live entry already holds it.

    Expired entries, and in-progress entries older than ``stale_after_s``, are taken over.
    """
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys AS k (scope, route, key, request_hash, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) "
        "ON CONFLICT (scope, route, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
        "state = 'in_progress', status_code = NULL, response_body = NULL, created_at = now(), "
        "expires_at = EXCLUDED.expires_at "
        "WHERE k.expires_at <= now() "
        "OR (k.state = 'in_progress' AND k.created_at < now() - make_interval(secs => $6)) "
        "RETURNING true",
        scope,
        route,
        key,
        request_hash,
        float(ttl_s),
        float(stale_after_s),
    )
    return bool(claimed)


async def fetch_key(conn: asyncpg.Connection, *, scope: str, route: str, key: str) -> Record | None:
    """The live entry for the key (expired ones count as absent)."""
    return await conn.fetchrow(
        "SELECT request_hash, state, status_code, response_body, created_at, expires_at "
        "FROM idempotency_keys WHERE scope = $1 AND route = $2 AND key = $3 "
        "AND expires_at > now()",
        scope,
        route,
        key,
    )


async def complete_key(
    conn: asyncpg.Connection,
    *,
    scope: str,
    route: str,
    key: str,
    status_code: int,
    response_body: bytes,
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET state = 'done', status_code = $4, response_body = $5 "
        "WHERE scope = $1 AND route = $2 AND key = $3",
        scope,
        route,
        key,
        status_code,
        response_body,
    )


async def release_key(conn: asyncpg.Connection, *, scope: str, route: str, key: str) -> None:
    """Forgets an in-progress key whose request failed, so a retry runs again."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND route = $2 AND key = $3 "
        "AND state = 'in_progress'",
        scope,
        route,
        key,
    )


async def delete_expired_keys(
    conn: asyncpg.Connection, *, now: datetime | None = None, batch_size: int = 10_000
) -> int:
    """Deletes expired keys in batches (short transactions); returns how many went."""
    deleted = 0
    while True:
        result = await conn.execute(
            "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
            "WHERE expires_at <= COALESCE($1, now()) LIMIT $2)",
            now,
            batch_size,
        )
        count = int(result.split()[-1])
        deleted += count
        if count < batch_size:
            return deleted
