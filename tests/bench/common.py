"""Shared pieces of the benchmarks: a scratch database, a real api server, stats helpers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from migrations.runner import apply_migrations

ROOT = Path(__file__).resolve().parents[2]
BASE_URL = os.environ.get("ETP_BENCH_DATABASE_URL", "postgresql://etp:etp@127.0.0.1:5432/etp")
REDIS_URL = os.environ.get("ETP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def db_url(name: str) -> str:
    return BASE_URL.rsplit("/", 1)[0] + "/" + name


async def fresh_database(name: str) -> str:
    admin = await asyncpg.connect(db_url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(db_url(name))
    try:
        await apply_migrations(conn, log=lambda _m: None)
    finally:
        await conn.close()
    return db_url(name)


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "mean": statistics.fmean(ordered),
    }


@asynccontextmanager
async def api_server(
    database_url: str, **env: str
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real Hypercorn api process (with its own local Ray) on a free port."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ETP_", "RAY_"))}
    full_env.update(
        {
            "ETP_DATABASE_URL": database_url,
            "ETP_REDIS_URL": REDIS_URL,
            "ETP_RAY_ADDRESS": "",
            "ETP_LOG_LEVEL": "WARNING",
            "ETP_DATA_DIR": f"/tmp/etp-bench-{port}",
            "ETP_ACTOR_IDLE_S": "600",
            **env,
        }
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "asyncio",
            "api.asgi:app",
        ],
        env=full_env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(f"/tmp/etp-bench-api-{port}.log", "wb"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(240):
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"api exited; see /tmp/etp-bench-api-{port}.log")
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError("api did not become ready")
        yield url, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def uss_of(procs: list[psutil.Process], name_part: str) -> list[int]:
    sizes = []
    for proc in procs:
        try:
            if name_part in " ".join(proc.cmdline()) or name_part in proc.name():
                sizes.append(proc.memory_full_info().uss)
        except psutil.Error:
            pass
    return sizes


async def make_sensors(url: str, count: int, **fields: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        email = f"bench{time.time_ns()}@example.com"
        r = await client.post(
            "/api/v1/auth/register",
            json={"email": email, "display_name": "Bench", "password": "bench passphrase 1"},
        )
        csrf = r.json()["csrf_token"]
        r = await client.post(
            "/api/v1/auth/tokens", json={"name": "bench"}, headers={"X-CSRF-Token": csrf}
        )
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        project = (
            await client.post("/api/v1/projects", json={"name": "bench"}, headers=auth)
        ).json()
        sensors = []
        for i in range(count):
            r = await client.post(
                f"/api/v1/projects/{project['id']}/sensors",
                json={"name": f"bench-{i}", **fields},
                headers=auth,
            )
            r.raise_for_status()
            sensors.append(r.json())
        return sensors
