"""Ingest benchmark: raw COPY baseline vs. the full HTTP → Ray actor → COPY path.

    .venv/bin/python -m tests.bench.ingest [--duration 20] [--spec-sensors 200]

Prints points/s, the ratio to the raw COPY baseline measured in the same process, ack latency
percentiles, CPU seconds per 100k points and memory per active sensor, for both placements.
Not part of `make test`; figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from core.telemetry_sql import TELEMETRY_COLUMNS
from tests.bench.common import (
    api_server,
    cpu_seconds,
    fresh_database,
    make_sensors,
    percentiles,
    process_tree,
    uss_of,
)


async def baseline_copy(url: str, rows_total: int, batch: int = 5000) -> float:
    """(a) raw copy_records_to_table of the same rows into the same hypertable."""
    conn = await asyncpg.connect(url)
    try:
        sensors = [uuid.uuid4() for _ in range(20)]
        start = datetime.now(UTC) - timedelta(hours=1)
        now = datetime.now(UTC)
        records = [
            (
                sensors[i % 20],
                start + timedelta(microseconds=i),
                float(i),
                float(i) * 2,
                "ok",
                1,
                None,
                None,
                None,
                now,
            )
            for i in range(rows_total)
        ]
        began = time.perf_counter()
        for offset in range(0, rows_total, batch):
            await conn.copy_records_to_table(
                "telemetry", records=records[offset : offset + batch], columns=TELEMETRY_COLUMNS
            )
        return rows_total / (time.perf_counter() - began)
    finally:
        await conn.close()


async def sensor_loop(
    client: httpx.AsyncClient,
    token: str,
    *,
    size: int,
    interval_s: float,
    deadline: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    ts = int(time.time() * 1_000_000) - 3_600_000_000 + random.randrange(1_000_000)
    next_send = time.perf_counter() + random.random() * interval_s
    while time.perf_counter() < deadline:
        if interval_s:
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
            next_send += interval_s
        points = [{"ts": ts + i, "value": float(i)} for i in range(size)]
        ts += size
        began = time.perf_counter()
        response = await client.post("/api/v1/telemetry", json={"points": points}, headers=headers)
        latencies.append((time.perf_counter() - began) * 1000)
        key = str(response.status_code)
        counts[key] = counts.get(key, 0) + (size if response.status_code == 202 else 1)


async def run_shape(
    url: str, pid: int, sensors: list[dict], *, size: int, interval_s: float, duration_s: float
) -> dict:
    latencies: list[float] = []
    counts: dict[str, int] = {}
    procs = process_tree(pid)
    cpu_before = cpu_seconds(procs)
    limits = httpx.Limits(max_connections=len(sensors) + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        # Warm-up: creates every sensor's actor before measuring.
        await asyncio.gather(
            *(
                sensor_loop(
                    client,
                    s["token"],
                    size=1,
                    interval_s=0,
                    deadline=time.perf_counter() + 0.001,
                    latencies=[],
                    counts={},
                )
                for s in sensors
            )
        )
        began = time.perf_counter()
        deadline = began + duration_s
        await asyncio.gather(
            *(
                sensor_loop(
                    client,
                    s["token"],
                    size=size,
                    interval_s=interval_s,
                    deadline=deadline,
                    latencies=latencies,
                    counts=counts,
                )
                for s in sensors
            )
        )
        elapsed = time.perf_counter() - began
    procs = process_tree(pid)
    accepted = counts.get("202", 0)
    return {
        "points_per_s": accepted / elapsed,
        "accepted": accepted,
        "statuses": {k: v for k, v in counts.items() if k != "202"},
        "latency_ms": percentiles(latencies),
        "cpu_s_per_100k": (cpu_seconds(procs) - cpu_before) / max(accepted, 1) * 100_000,
        "procs": procs,
    }


def memory_per_sensor(procs: list, sensors: int, placement: str) -> float:
    name = "SensorHostActor" if placement.startswith("packed") else "SensorActor"
    sizes = uss_of(procs, name)
    return sum(sizes) / max(sensors, 1) / 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--spec-sensors", type=int, default=200)
    parser.add_argument("--sat-sensors", type=int, default=20)
    parser.add_argument("--placements", default="dedicated,packed:4")
    args = parser.parse_args()
    url = await fresh_database("etp_bench_ingest")
    baseline = await baseline_copy(url, 200_000)
    print(f"(a) raw COPY baseline: {baseline:,.0f} rows/s")
    for placement in args.placements.split(","):
        url = await fresh_database("etp_bench_ingest")
        async with api_server(url, ETP_SENSOR_ACTORS=placement) as (api, pid):
            spec = await make_sensors(api, args.spec_sensors, expected_rate_hz=25)
            result = await run_shape(
                api, pid.pid, spec, size=25, interval_s=1.0, duration_s=args.duration
            )
            lat = result["latency_ms"]
            print(
                f"(b) {placement} spec shape {args.spec_sensors}x25 @ 5k pts/s offered: "
                f"{result['points_per_s']:,.0f} pts/s, ack p50/p95/p99 "
                f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms, "
                f"CPU {result['cpu_s_per_100k']:.1f} s/100k pts, "
                f"memory {memory_per_sensor(result['procs'], len(spec), placement):.1f} MB "
                f"USS/active sensor, other statuses {result['statuses']}"
            )
            sat = spec[: args.sat_sensors]
            result = await run_shape(
                api, pid.pid, sat, size=1000, interval_s=0, duration_s=args.duration
            )
            lat = result["latency_ms"]
            print(
                f"(b) {placement} saturation {len(sat)}x1000 closed loop: "
                f"{result['points_per_s']:,.0f} pts/s = {result['points_per_s'] / baseline:.0%}"
                f" of raw COPY, ack p50/p95/p99 {lat['p50']:.1f}/{lat['p95']:.1f}/"
                f"{lat['p99']:.1f} ms, CPU {result['cpu_s_per_100k']:.1f} s/100k pts, "
                f"other statuses {result['statuses']}"
            )


if __name__ == "__main__":
    asyncio.run(main())
