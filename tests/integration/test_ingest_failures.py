"""Failure drills: a killed sensor actor and a stopped database lose no acknowledged point."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import ray

from actors.gateway import host_index, sensor_actor_name, sensor_host_name
from core.settings import Secret, Settings
from migrations.runner import apply_migrations
from tests.integration.helpers import create_project, create_sensor, register, send_points


async def stream(app, token, *, batches, size, acked, statuses, pause_s=0.02, start_ms=None):
    """Sends batches with unique timestamps, retrying each until it is acknowledged."""
    base = start_ms or int(time.time() * 1000)
    for b in range(batches):
        points = [{"ts": base + b * size + i, "value": float(b * size + i)} for i in range(size)]
        for _attempt in range(200):
            response = await send_points(app, token, points)
            statuses.append(response.status_code)
            if response.status_code == 202:
                acked.update(p["ts"] for p in points)
                break
            assert response.status_code in (429, 503), await response.get_json()
            assert "Retry-After" in response.headers
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a batch was never acknowledged")
        await asyncio.sleep(pause_s)


@pytest.fixture(params=["dedicated", "packed:2"])
def settings(settings, request):
    return settings.replace(sensor_actors=request.param)


def writer_actor_name(settings, sensor_id: str) -> str:
    if settings.packed_hosts:
        return sensor_host_name(host_index(sensor_id, settings.packed_hosts), settings)
    return sensor_actor_name(sensor_id)


async def test_killing_the_sensor_actor_mid_stream_loses_no_acknowledged_point(app, db, settings):
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"])
    acked: set[int] = set()
    statuses: list[int] = []
    client = asyncio.create_task(
        stream(app, sensor["token"], batches=60, size=50, acked=acked, statuses=statuses)
    )
    await asyncio.sleep(0.5)
    actor = ray.get_actor(
        writer_actor_name(settings, sensor["id"]), namespace=settings.ray_namespace
    )
    pid = await actor.pid.remote()
    os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(client, 120)
    rows = await db.fetch(
        "SELECT (extract(epoch FROM ts) * 1000)::bigint AS ms FROM telemetry WHERE sensor_id = $1",
        uuid.UUID(sensor["id"]),
    )
    stored = [r["ms"] for r in rows]
    assert len(stored) == len(set(stored))  # no duplicates
    assert acked <= set(stored)  # every acknowledged point is there
    assert len(acked) == 60 * 50
    assert 500 not in statuses
    new_pid = await actor.pid.remote()
    assert new_pid != pid  # Ray restarted the actor and it kept serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        pytest.fail("PostgreSQL server binaries are missing (make setup installs them)")
    return candidates[-1].parent


class OwnPostgres:
    """A PostgreSQL instance of this test's own, with TimescaleDB preloaded."""

    def __init__(self, root: Path):
        self.bindir = _pg_bindir()
        self.datadir = root / "pgdata"
        self.port = _free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.datadir.parent, "postgres")
        self.run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
        )
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.datadir}'\n"
                "shared_preload_libraries = 'timescaledb'\n"
                "timescaledb.telemetry_level = off\nfsync = off\n"
            )

    def start(self) -> None:
        self.run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.datadir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/etp"


@pytest.fixture
async def own_postgres():
    # Not under pytest's tmp dir: the postgres user must be able to reach the data directory.
    root = Path(tempfile.mkdtemp(prefix="etp-own-pg-"))
    root.chmod(0o755)
    pg = OwnPostgres(root)
    pg.init()
    pg.start()
    try:
        admin = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/postgres")
        await admin.execute("CREATE DATABASE etp")
        await admin.close()
        conn = await asyncpg.connect(pg.url)
        await apply_migrations(conn, log=lambda _m: None)
        await conn.close()
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_stopping_postgres_answers_503_and_loses_nothing(
    own_postgres, redis_url, ray_instance, tmp_path
):
    from api.app import create_app
    from tests.conftest import RAY_NAMESPACE

    settings = Settings(
        mode="test",
        database_url=own_postgres.url,
        redis_url=redis_url,
        ray_namespace=RAY_NAMESPACE,
        secret_key=Secret("k" * 40),
        data_dir=str(tmp_path),
        base_url="http://testserver.local",
        db_pool_min=1,
        db_pool_max=4,
        db_command_timeout_s=5,
    )
    app = create_app(settings)
    async with app.test_app() as test_app:
        owner = await register(test_app)
        project = await create_project(owner)
        sensor = await create_sensor(owner, project["id"])
        acked: set[int] = set()
        statuses: list[int] = []
        client = asyncio.create_task(
            stream(
                test_app,
                sensor["token"],
                batches=80,
                size=20,
                acked=acked,
                statuses=statuses,
                pause_s=0.05,
            )
        )
        await asyncio.sleep(1.0)
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.sleep(4.0)
        await asyncio.to_thread(own_postgres.start)
        await asyncio.wait_for(client, 120)
    assert statuses.count(503) >= 1, "the outage was not noticed"
    assert 500 not in statuses
    conn = await asyncpg.connect(own_postgres.url)
    try:
        rows = await conn.fetch(
            "SELECT (extract(epoch FROM ts) * 1000)::bigint AS ms FROM telemetry"
        )
    finally:
        await conn.close()
    stored = [r["ms"] for r in rows]
    assert len(stored) == len(set(stored))
    assert acked <= set(stored)
    assert len(acked) == 80 * 20


async def test_a_writer_releases_its_connection_when_idle(settings, db):
    from actors.sensor import SharedConnection

    shared = SharedConnection(settings)
    shared.IDLE_RELEASE_S = 0.4
    async with shared.use() as conn:
        assert await conn.fetchval("SELECT 1") == 1
    count = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    assert await db.fetchval(count) == 2  # this test's connection and the writer's
    await asyncio.sleep(1.0)
    assert shared.conn is None
    assert await db.fetchval(count) == 1
    async with shared.use() as conn:  # and comes back on the next flush
        assert await conn.fetchval("SELECT 2") == 2
    await shared.close()
