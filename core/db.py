"""The one asyncpg pool factory, and the one place driver errors become domain errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from core.errors import AppError, Conflict, InvalidInput, NotFound, Unavailable
from core.json import dumps
from core.settings import Settings

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.InterfaceError,
)


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + dumps(value)  # jsonb's binary format: a version byte, then text


def _jsonb_decode(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def init_connection(conn: asyncpg.Connection) -> None:
    """Registers orjson for json/jsonb (binary format, so COPY can carry them too)."""
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=dumps, decoder=orjson.loads, format="binary"
    )
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_encode, decoder=_jsonb_decode, format="binary"
    )


def translate_error(exc: BaseException) -> AppError | None:
    """Maps a driver/connection error to the domain error tree (``None``: not ours to map)."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return Conflict("the object already exists", details={"constraint": exc.constraint_name})
    if isinstance(exc, asyncpg.exceptions.ForeignKeyViolationError):
        return NotFound(
            "a referenced object does not exist", details={"constraint": exc.constraint_name}
        )
    if isinstance(
        exc, asyncpg.exceptions.CheckViolationError | asyncpg.exceptions.NotNullViolationError
    ):
        return InvalidInput("the value breaks a rule", details={"constraint": exc.constraint_name})
    if isinstance(exc, asyncpg.exceptions.DataError):
        return InvalidInput("the value is not valid for its field")
    if isinstance(
        exc,
        asyncpg.exceptions.SerializationError | asyncpg.exceptions.DeadlockDetectedError,
    ):
        return Unavailable("the database asked to retry a conflicting write", retry_after_s=0.2)
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return Unavailable("the database query took too long", retry_after_s=1.0)
    if isinstance(exc, _CONNECTION_ERRORS):
        return Unavailable("the database is unavailable", retry_after_s=2.0)
    return None


@contextlib.contextmanager
def database_errors() -> Any:
    """Re-raises driver errors inside the block as domain errors."""
    try:
        yield
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


class Database:
    """A pool plus error translation; ``async with db.acquire() as conn`` everywhere."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        with database_errors():
            async with self.pool.acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        with database_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn

    async def close(self) -> None:
        await self.pool.close()


async def create_pool(
    settings: Settings, *, min_size: int | None = None, max_size: int | None = None
) -> Database:
    """Opens the pool (the only place one is made); fails with ``Unavailable`` if unreachable."""
    with database_errors():
        pool = await asyncpg.create_pool(
            settings.database_url,
            min_size=settings.db_pool_min if min_size is None else min_size,
            max_size=settings.db_pool_max if max_size is None else max_size,
            init=init_connection,
            command_timeout=settings.db_command_timeout_s,
            timeout=10,
        )
    assert pool is not None
    return Database(pool)


def describe_target(database_url: str) -> str:
    """``host:port/db`` of a database URL, without credentials (safe to log)."""
    parts = urlsplit(database_url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


async def connect(settings: Settings) -> asyncpg.Connection:
    """One plain connection (migrations, actors); codecs registered like the pool's."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except (asyncpg.PostgresError, *_CONNECTION_ERRORS, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unavailable(
            f"cannot connect to the database at {describe_target(settings.database_url)}: {reason}"
        ) from exc
    await init_connection(conn)
    return conn
