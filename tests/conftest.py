"""Shared fixtures: real PostgreSQL (+TimescaleDB), Redis and Ray; the real Quart app.

- a template database is migrated once per test session; each test gets a fresh copy;
- each test gets a flushed Redis database of its own number;
- one Ray instance serves the whole test session.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from core.settings import Secret, Settings
from migrations.runner import apply_migrations

BASE_URL = os.environ.get("ETP_TEST_DATABASE_URL", "postgresql://etp:etp@127.0.0.1:5432/etp")
REDIS_URL = os.environ.get("ETP_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
_RUN = f"{os.getpid()}"
TEMPLATE = f"etp_tpl_{_RUN}"
RAY_NAMESPACE = f"etp-test-{_RUN}"
_counter = itertools.count()


def database_url(name: str) -> str:
    head, _, _ = BASE_URL.rpartition("/")
    return f"{head}/{name}"


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(database_url("postgres"))


@pytest.fixture(scope="session")
async def template_database() -> AsyncIterator[str]:
    admin = await _admin()
    try:
        # Leftovers of an earlier, killed run of this process id are replaced.
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        conn = await asyncpg.connect(database_url(TEMPLATE))
        try:
            await apply_migrations(conn, log=lambda _msg: None)
        finally:
            await conn.close()
        # TimescaleDB's scheduler connects to every database that has the extension; a
        # template must have no sessions, so connections to it are closed and refused.
        await admin.execute(f'ALTER DATABASE "{TEMPLATE}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", TEMPLATE
        )
        yield TEMPLATE
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database(template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test; its URL."""
    name = f"etp_t_{_RUN}_{next(_counter)}"
    admin = await _admin()
    try:
        for attempt in range(50):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
                break
            except asyncpg.ObjectInUseError:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """An empty database with no migrations applied; its URL."""
    name = f"etp_e_{_RUN}_{next(_counter)}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    yield REDIS_URL


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray instance for the whole test session (a few seconds to start)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # never join a cluster someone else started on this machine
            num_cpus=2,
            namespace=RAY_NAMESPACE,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    yield
    ray.shutdown()


@pytest.fixture
def settings(database: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        mode="test",
        database_url=database,
        redis_url=redis_url,
        ray_namespace=RAY_NAMESPACE,
        secret_key=Secret("test-secret-key-" + "x" * 32),
        data_dir=str(tmp_path / "data"),
        base_url="http://testserver.local",
        db_pool_min=1,
        db_pool_max=5,
    )


@pytest.fixture
async def app(settings: Settings, ray_instance: None) -> AsyncIterator[object]:
    """The real app with its lifespan running (pools, Redis, Ray)."""
    from api.app import create_app

    application = create_app(settings)
    async with application.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(app: object) -> object:
    return app.test_client()  # type: ignore[attr-defined]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test's database, for assertions."""
    from core.db import connect

    conn = await connect(settings)
    yield conn
    await conn.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests run on one event loop (session scope) so Ray, pools and the app can be shared.
    for item in items:
        if asyncio.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"))
