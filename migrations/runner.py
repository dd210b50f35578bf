"""Applies ``sql/NNNN_name.sql`` files in order, once each, under an advisory lock.

Every file runs in its own transaction; ``schema_migrations`` remembers the SHA-256 of each
applied file so an edited file is refused instead of silently diverging.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SQL_DIR = Path(__file__).parent / "sql"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed 64-bit number; shared by every process that migrates this database.
ADVISORY_LOCK_KEY = 0x45_54_50_4D_49_47  # "ETPMIG"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms double precision NOT NULL
)
"""


class MigrationError(Exception):
    """A migration set that cannot be applied safely."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every migration file, ordered by version; refuses gaps, duplicates and odd names."""
    found: list[Migration] = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(int(match[1]), match[2], path, path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{migration.path.name}: expected version {expected:04d} (no gaps or duplicates)"
            )
    return found


async def apply_migrations(
    conn: asyncpg.Connection, *, sql_dir: Path = SQL_DIR, log: object = print
) -> list[Migration]:
    """Applies what is pending and returns it; an edited applied file raises MigrationError."""
    migrations = discover(sql_dir)
    say = log if callable(log) else print
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        for migration in migrations:
            row = applied.get(migration.version)
            if row is not None and row["checksum"] != migration.checksum:
                raise MigrationError(
                    f"{migration.path.name} was edited after it was applied (checksum differs); "
                    "add a new migration instead"
                )
        unknown = sorted(set(applied) - {m.version for m in migrations})
        if unknown:
            raise MigrationError(
                f"the database has migration {unknown[-1]:04d}, which this code does not know; "
                "is this an older release?"
            )
        pending = [m for m in migrations if m.version not in applied]
        if not pending:
            latest = max(applied, default=0)
            say(f"migrations: nothing to apply; schema is at {latest:04d}")
            return []
        for migration in pending:
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
                    "VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    (time.perf_counter() - started) * 1000,
                )
            say(
                f"migrations: applied {migration.path.name} "
                f"({(time.perf_counter() - started) * 1000:.0f} ms)"
            )
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
