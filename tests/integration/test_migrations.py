"""Migrations against a real, empty PostgreSQL database."""

import asyncio
import shutil

import asyncpg
import pytest

from migrations.runner import SQL_DIR, MigrationError, apply_migrations, discover

EXPECTED_TABLES = {
    "users",
    "user_sessions",
    "api_tokens",
    "password_resets",
    "mail_outbox",
    "projects",
    "project_members",
    "experiments",
    "runs",
    "capture_sessions",
    "sensors",
    "sensor_projects",
    "run_sensors",
    "conversion_profiles",
    "sensor_ingest_errors",
    "telemetry",
    "telemetry_1m",
    "telemetry_session_1m",
    "run_metrics",
    "artifacts",
    "comparisons",
    "outbox",
    "webhook_subscriptions",
    "webhook_deliveries",
    "exports",
    "audit_events",
    "idempotency_keys",
    "schema_migrations",
}


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return {row["table_name"] for row in rows}


async def test_all_migrations_apply_to_an_empty_database_and_rerun_does_nothing(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        messages: list[str] = []
        applied = await apply_migrations(conn, log=messages.append)
        assert [m.version for m in applied] == [m.version for m in discover()]
        assert await _tables(conn) >= EXPECTED_TABLES
        assert await apply_migrations(conn, log=messages.append) == []
        assert messages[-1].startswith("migrations: nothing to apply")
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(discover())
        checksums = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        assert {r["version"]: r["checksum"] for r in checksums} == {
            m.version: m.checksum for m in discover()
        }
    finally:
        await conn.close()


async def test_timescaledb_is_enabled_and_telemetry_is_a_hypertable(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, log=lambda _m: None)
        version = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        )
        assert version is not None, "make setup installs TimescaleDB; the schema must use it"
        hypertables = await conn.fetch(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        )
        assert {"telemetry"} <= {r["hypertable_name"] for r in hypertables}
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused_by_name(empty_database, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    conn = await asyncpg.connect(empty_database)
    try:
        await apply_migrations(conn, sql_dir=sql_dir, log=lambda _m: None)
        first = sorted(sql_dir.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError) as caught:
            await apply_migrations(conn, sql_dir=sql_dir, log=lambda _m: None)
        assert first.name in str(caught.value)
    finally:
        await conn.close()


async def test_a_failing_migration_rolls_back_alone(empty_database, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    bad = sql_dir / f"{len(discover()) + 1:04d}_broken.sql"
    bad.write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
    conn = await asyncpg.connect(empty_database)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, sql_dir=sql_dir, log=lambda _m: None)
        assert "half_done" not in await _tables(conn)
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == len(discover())
    finally:
        await conn.close()


async def test_two_concurrent_starters_apply_each_file_once(empty_database):
    conns = [await asyncpg.connect(empty_database) for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(c, log=lambda _m: None) for c in conns))
        assert sorted(len(r) for r in results) == [0, len(discover())]
    finally:
        for conn in conns:
            await conn.close()


def test_badly_named_files_and_gaps_are_refused(tmp_path):
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "0003_gap.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"0003_gap\.sql"):
        discover(tmp_path)
    (tmp_path / "0003_gap.sql").unlink()
    (tmp_path / "2_bad-name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"2_bad-name\.sql"):
        discover(tmp_path)
