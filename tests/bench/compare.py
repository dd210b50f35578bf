"""Comparison and metrics-ingest benchmark: prints figures, asserts nothing.

    .venv/bin/python -m tests.bench.compare [--runs 100] [--metrics 20] [--steps 10000]
        [--sessions 5] [--sensors 10] [--session-minutes 10] [--rounds 20]

One api process on a fresh database. Metrics ingest is timed twice: through the API
(``POST /runs/{rid}/metrics``, 10,000 points per request, 4 in flight) and in bulk through
``core.metrics.append_metrics`` (binary COPY plus the summary upsert), which also fills
runs × metrics × steps points. Capture sessions (``sessions`` runs × ``sensors`` sensors,
10 Hz) are filled in SQL with their per-minute rollups. Then ``POST /comparisons`` of every
run and ``GET /comparisons/{id}`` are timed (p50/p95), and one HTML export.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from core.db import init_connection
from core.metrics import MetricPoint, append_metrics
from tests.bench.live import API, api_server, api_user, make_sensors

FILL_TELEMETRY = """
INSERT INTO telemetry (sensor_id, ts, raw_value, physical_value, profile_version, run_id,
                       capture_session_id, received_at)
SELECT $1::uuid, t, v, 2 * v, 1, $2::uuid, $3::uuid, t
FROM (SELECT t, 20 + 5 * sin(extract(epoch FROM t) / 60) + random() AS v
      FROM generate_series($4::timestamptz, $5::timestamptz, interval '100 milliseconds') t) s
"""
FILL_SESSION_ROLLUP = """
INSERT INTO telemetry_session_1m (capture_session_id, sensor_id, bucket, count, raw_sum, raw_min,
    raw_max, phys_count, phys_sum, phys_min, phys_max, first_ts, last_ts)
SELECT capture_session_id, sensor_id, date_trunc('minute', ts), count(*), sum(raw_value),
       min(raw_value), max(raw_value), count(physical_value), sum(physical_value),
       min(physical_value), max(physical_value), min(ts), max(ts)
FROM telemetry WHERE capture_session_id = $1 GROUP BY 1, 2, 3
"""


def stats(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
    return f"p50 {statistics.median(samples):.0f} ms, p95 {q[94]:.0f} ms (n={len(samples)})"


async def api_ingest(http: httpx.AsyncClient, auth: dict, run_id: str, requests: int) -> str:
    batches = [
        [{"name": f"m{k % 20}", "value": float(i), "step": k * 500 + i} for i in range(10_000)]
        for k in range(requests)
    ]
    gate = asyncio.Semaphore(4)

    async def post(batch: list[dict]) -> None:
        async with gate:
            response = await http.post(
                f"{API}/runs/{run_id}/metrics", json={"metrics": batch}, headers=auth
            )
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(post(b) for b in batches))
    elapsed = time.perf_counter() - started
    return f"{requests * 10_000 / elapsed:,.0f} points/s ({requests} requests in {elapsed:.1f} s)"


async def bulk_fill(database_url: str, run_ids: list[str], metrics: int, steps: int) -> str:
    conn = await asyncpg.connect(database_url)
    await init_connection(conn)
    now = datetime.now(UTC)
    started = time.perf_counter()
    try:
        for r, run_id in enumerate(run_ids):
            for m in range(metrics):
                for first in range(0, steps, 10_000):
                    points = [
                        MetricPoint(f"metric_{m}", s, 1.0 / (1 + s) + r * 0.001 + m, now)
                        for s in range(first, min(steps, first + 10_000))
                    ]
                    await append_metrics(conn, run_id=uuid.UUID(run_id), points=points)
        await conn.execute("ANALYZE run_metrics; ANALYZE run_metric_summaries")
    finally:
        await conn.close()
    elapsed = time.perf_counter() - started
    total = len(run_ids) * metrics * steps
    return f"{total:,} points in {elapsed:.0f} s = {total / elapsed:,.0f} points/s"


async def fill_sessions(
    database_url: str, runs: list[dict], sensor_ids: list[str], minutes: int
) -> str:
    conn = await asyncpg.connect(database_url)
    started = time.perf_counter()
    try:
        for sensor in sensor_ids:
            await conn.execute(
                "INSERT INTO conversion_profiles (sensor_id, version, kind, payload, status, "
                "valid_from) VALUES ($1, 1, 'linear', '{\"a\": 2, \"b\": 0}', 'active', "
                "'2000-01-01')",
                uuid.UUID(sensor),
            )
        end = datetime.now(UTC) - timedelta(hours=1)
        for i, run in enumerate(runs):
            start = end - timedelta(minutes=minutes * (i + 1) * 2)
            stop = start + timedelta(minutes=minutes)
            session = await conn.fetchval(
                "INSERT INTO capture_sessions (run_id, project_id, ordinal, status, started_at, "
                "stopped_at) VALUES ($1, $2, 1, 'succeeded', $3, $4) RETURNING id",
                uuid.UUID(run["id"]),
                uuid.UUID(run["project_id"]),
                start,
                stop,
            )
            for sensor in sensor_ids:
                await conn.execute(
                    FILL_TELEMETRY, sensor, run["id"], session, start,
                    stop - timedelta(milliseconds=100),
                )  # fmt: skip
            await conn.execute(FILL_SESSION_ROLLUP, session)
        await conn.execute("ANALYZE telemetry; ANALYZE telemetry_session_1m")
    finally:
        await conn.close()
    points = len(runs) * len(sensor_ids) * minutes * 600
    return f"{points:,} points in {time.perf_counter() - started:.0f} s"


async def run(args: argparse.Namespace) -> None:
    async with (
        api_server() as (base, _process, database_url),
        httpx.AsyncClient(base_url=base, timeout=300) as http,
    ):
        auth = await api_user(http)
        sensors = [s["id"] for s in await make_sensors(http, auth, args.sensors)]
        project_id = (await http.get(f"{API}/projects", headers=auth)).json()["items"][0]["id"]
        exp = (
            await http.post(
                f"{API}/projects/{project_id}/experiments", json={"name": "bench"}, headers=auth
            )
        ).json()
        runs = []
        for i in range(args.runs):
            params = {"lr": 10 ** -(i % 4), "batch": 32, "seed": i, "opt": "adam"}
            response = await http.post(
                f"{API}/experiments/{exp['id']}/runs",
                json={"name": f"run-{i}", "params": params},
                headers=auth,
            )
            runs.append(response.json())
        for run_ in runs[: args.sessions]:
            await http.put(
                f"{API}/runs/{run_['id']}/sensors", json={"sensor_ids": sensors}, headers=auth
            )
        spare = (
            await http.post(f"{API}/experiments/{exp['id']}/runs", json={"name": "x"}, headers=auth)
        ).json()
        print(f"compare bench: {args.runs} runs × {args.metrics} metrics × {args.steps} steps")
        print(f"  ingest via API: {await api_ingest(http, auth, spare['id'], args.api_requests)}")
        bulk = await bulk_fill(database_url, [r["id"] for r in runs], args.metrics, args.steps)
        print(f"  ingest via COPY (append_metrics): {bulk}")
        filled = await fill_sessions(
            database_url, runs[: args.sessions], sensors, args.session_minutes
        )
        print(f"  sessions: {args.sessions} × {args.sensors} sensors at 10 Hz, {filled}")
        body = {"run_ids": [r["id"] for r in runs], "max_points": 500}
        created, fetched = [], []
        comparison = {}
        for _ in range(args.rounds):
            started = time.perf_counter()
            response = await http.post(f"{API}/comparisons", json=body, headers=auth)
            created.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 201, response.text
            comparison = response.json()
        for _ in range(args.rounds):
            started = time.perf_counter()
            response = await http.get(f"{API}/comparisons/{comparison['id']}", headers=auth)
            fetched.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        overlay = comparison["telemetry"]
        print(
            f"  comparison: {len(comparison['metrics'])} metrics, {len(comparison['params'])} "
            f"params, {len(overlay['series'])} overlay series ({overlay['bucket_ms']} ms buckets)"
        )
        print(f"  POST /comparisons: {stats(created)}")
        print(f"  GET /comparisons/{{id}}: {stats(fetched)}")
        started = time.perf_counter()
        html = await http.get(
            f"{API}/comparisons/{comparison['id']}/export?format=html", headers=auth
        )
        print(
            f"  HTML export: {len(html.content) / 1e6:.1f} MB in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--session-minutes", type=int, default=10)
    parser.add_argument("--api-requests", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
