"""Live fan-out benchmark: prints figures, asserts nothing.

    .venv/bin/python -m tests.bench.live [--sensors 20] [--rate 5000] [--clients 100]
        [--idle-clients 2000] [--seconds 20]

One api process (Hypercorn, started here on a free port, with its own local Ray) serves K
sensors publishing R points/s in total through the real ingest, and C live clients (half SSE,
half WebSocket, each following 2 sensors). Prints delivery latency p50/p99 (POST start →
client receipt), gaps, duplicates, dropped points, and the api's memory per idle client.
Needs the PostgreSQL and Redis of the test setup (ETP_TEST_DATABASE_URL / ETP_TEST_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import httpx
import orjson
import psutil

from migrations.runner import apply_migrations

DB_URL = os.environ.get("ETP_TEST_DATABASE_URL", "postgresql://etp:etp@127.0.0.1:5432/etp")
REDIS_URL = os.environ.get("ETP_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
API = "/api/v1"


def _db_url(name: str) -> str:
    return f"{DB_URL.rpartition('/')[0]}/{name}"


@contextlib.asynccontextmanager
async def api_server(**env: str) -> AsyncIterator[tuple[str, psutil.Process, str]]:
    """A fresh migrated database and a Hypercorn api process on it: (URL, process, DB URL)."""
    name = f"etp_bench_{os.getpid()}"
    admin = await asyncpg.connect(_db_url("postgres"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_db_url(name))
    await apply_migrations(conn, log=lambda _m: None)
    await conn.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {
        **os.environ,
        "ETP_MODE": "local",
        "ETP_DATABASE_URL": _db_url(name),
        "ETP_REDIS_URL": REDIS_URL,
        "ETP_SECRET_KEY": "bench-secret-" + "x" * 40,
        "ETP_BASE_URL": f"http://127.0.0.1:{port}",
        "ETP_RAY_NAMESPACE": f"bench-{os.getpid()}",
        "ETP_LOG_LEVEL": "WARNING",
        "ETP_DB_POOL_MAX": "20",
        **env,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "api.asgi:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--workers",
            "0",  # serve in this process, so its memory is the api's
        ],
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as probe:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base, psutil.Process(process.pid), _db_url(name)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
        process.kill()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def api_user(http: httpx.AsyncClient) -> dict[str, str]:
    """Registers a user; the bearer header of a fresh API token."""
    email = f"bench{time.time_ns()}@example.com"
    body = (
        await http.post(
            f"{API}/auth/register",
            json={
                "email": email,
                "display_name": "Bench",
                "password": "correct horse battery staple",
            },
        )
    ).json()
    token = (
        await http.post(
            f"{API}/auth/tokens",
            json={"name": "bench"},
            headers={"X-CSRF-Token": body["csrf_token"]},
        )
    ).json()["token"]
    http.cookies.clear()
    return {"Authorization": f"Bearer {token}"}


async def make_sensors(http: httpx.AsyncClient, auth: dict[str, str], count: int) -> list[dict]:
    project = (await http.post(f"{API}/projects", json={"name": "bench"}, headers=auth)).json()
    return [
        (
            await http.post(
                f"{API}/projects/{project['id']}/sensors", headers=auth, json={"name": f"s{i}"}
            )
        ).json()
        for i in range(count)
    ]


class Receipts:
    """Receipt times per (client, sensor, ts) and what the publishers sent when."""

    def __init__(self) -> None:
        self.sent_at: dict[tuple[str, int], float] = {}
        self.got: dict[int, list[tuple[str, int, float]]] = {}
        self.dropped = 0
        self.acks: list[float] = []  # POST start → 202, ms


async def sse_client(
    session: aiohttp.ClientSession,
    base: str,
    auth: dict,
    sensors: list[str],
    index: int,
    receipts: Receipts,
    ready: asyncio.Event | None,
) -> None:
    url = f"{base}{API}/telemetry/stream?sensor_ids={','.join(sensors)}"
    async with session.get(url, headers=auth, timeout=aiohttp.ClientTimeout(total=None)) as r:
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: ready") and ready is not None:
                ready.set()
            elif line.startswith("data: ") and '"points"' in line:
                data = orjson.loads(line[6:])
                now = time.perf_counter()
                receipts.dropped += data.get("dropped", 0)
                receipts.got.setdefault(index, []).extend(
                    (data["sensor_id"], p[0], now) for p in data["points"]
                )


async def ws_client(
    session: aiohttp.ClientSession,
    base: str,
    http: httpx.AsyncClient,
    auth: dict,
    sensors: list[str],
    index: int,
    receipts: Receipts,
    ready: asyncio.Event,
) -> None:
    ticket = (await http.post(f"{API}/ws/ticket", headers=auth)).json()["ticket"]
    async with session.ws_connect(f"{base}{API}/ws?ticket={ticket}") as ws:
        for sensor in sensors:
            await ws.send_str(
                orjson.dumps({"type": "subscribe", "channel": f"sensor:{sensor}"}).decode()
            )
        subscribed = 0
        async for message in ws:
            data = orjson.loads(message.data)
            if data.get("type") == "subscribed":
                subscribed += 1
                if subscribed == len(sensors):
                    ready.set()
            elif "points" in data:
                now = time.perf_counter()
                receipts.dropped += data.get("dropped", 0)
                receipts.got.setdefault(index, []).extend(
                    (data["sensor_id"], p[0], now) for p in data["points"]
                )


async def publish(
    http: httpx.AsyncClient,
    sensor: dict,
    rate: float,
    batches_per_s: float,
    until: float,
    receipts: Receipts | None,
) -> None:
    size = max(1, round(rate / batches_per_s))
    ts_ms = int(time.time() * 1000) * 1000  # µs-resolution timestamps, never repeated
    headers = {"Authorization": f"Bearer {sensor['token']}"}
    next_at = time.perf_counter()
    while time.perf_counter() < until:
        points = [{"ts": ts_ms + i, "value": 1.0} for i in range(size)]
        started = time.perf_counter()
        if receipts is not None:
            for p in points:
                receipts.sent_at[(sensor["id"], p["ts"])] = started
        await http.post(f"{API}/telemetry", json={"points": points}, headers=headers)
        if receipts is not None:
            receipts.acks.append((time.perf_counter() - started) * 1000)
        ts_ms += size
        next_at += 1 / batches_per_s
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace) -> None:
    async with api_server(ETP_SENSOR_ACTORS=args.placement) as (base, process, _database):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with (
            httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            auth = await api_user(http)
            sensors = await make_sensors(http, auth, args.sensors + 1)
            quiet, sensors = sensors[0], sensors[1:]
            until = time.perf_counter() + 3
            await asyncio.gather(*(publish(http, s, 100, 5, until, None) for s in sensors))
            receipts = Receipts()
            tasks, readies = [], []
            follows: dict[int, list[str]] = {}
            for i in range(args.clients):
                follows[i] = [
                    sensors[i % len(sensors)]["id"],
                    sensors[(i + 1) % len(sensors)]["id"],
                ]
                ready = asyncio.Event()
                readies.append(ready)
                if i % 2:
                    tasks.append(
                        asyncio.create_task(
                            ws_client(session, base, http, auth, follows[i], i, receipts, ready)
                        )
                    )
                else:
                    tasks.append(
                        asyncio.create_task(
                            sse_client(session, base, auth, follows[i], i, receipts, ready)
                        )
                    )
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
            until = time.perf_counter() + args.seconds
            per_sensor = args.rate / len(sensors)
            await asyncio.gather(
                *(publish(http, s, per_sensor, 5, until, receipts) for s in sensors)
            )
            await asyncio.sleep(2)
            latencies, gaps, dups = [], 0, 0
            for i, follow in follows.items():
                got = receipts.got.get(i, [])
                seen = {(s, ts) for s, ts, _ in got}
                dups += len(got) - len(seen)
                expected = {k for k in receipts.sent_at if k[0] in follow}
                gaps += len(expected - seen)
                latencies += [
                    (t - receipts.sent_at[(s, ts)]) * 1000
                    for s, ts, t in got
                    if (s, ts) in receipts.sent_at
                ]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            print(
                f"live: {args.sensors} sensors, {args.rate} points/s for {args.seconds} s, "
                f"{args.clients} clients (SSE+WS, 2 sensors each), placement {args.placement}"
            )
            print(
                f"  delivered {len(latencies)} points; "
                f"latency p50 {percentile(latencies, 50):.1f} ms,"
                f" p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms"
            )
            acks = receipts.acks
            print(
                f"  ingest ack p50 {percentile(acks, 50):.1f} ms, p99 {percentile(acks, 99):.1f} ms"
            )
            print(f"  gaps {gaps}, duplicates {dups}, dropped (coalesced) {receipts.dropped}")
            # Memory per idle client: SSE streams on a sensor that sends nothing.
            await asyncio.sleep(1)
            before = process.memory_info().rss
            idle_ready = [asyncio.Event() for _ in range(args.idle_clients)]
            idle = [
                asyncio.create_task(
                    sse_client(session, base, auth, [quiet["id"]], -1 - i, receipts, idle_ready[i])
                )
                for i in range(args.idle_clients)
            ]
            started = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in idle_ready)), 300)
            opened_s = time.perf_counter() - started
            await asyncio.sleep(2)
            after = process.memory_info().rss
            print(
                f"  {args.idle_clients} idle SSE clients opened in {opened_s:.1f} s; api RSS "
                f"+{(after - before) / 2**20:.1f} MiB = "
                f"{(after - before) / args.idle_clients / 1024:.1f} KiB per client"
            )
            for task in idle:
                task.cancel()
            await asyncio.gather(*idle, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--idle-clients", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--placement", default="packed:2")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
