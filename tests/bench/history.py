"""History benchmark: prints figures, asserts nothing.

    .venv/bin/python -m tests.bench.history [--sensors 10] [--days 7] [--rounds 30]

Fills a fresh database with ``sensors`` × ``days`` at 1 Hz (10 × 7 days ≈ 6M points) plus
their per-minute rollups, straight in SQL (the ingest path has its own benchmark), then times
``GET /telemetry/aggregate`` (max_points=2000) and ``GET /telemetry`` pages through one api
process: p50/p95 per query shape.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg
import httpx

from tests.bench.live import API, api_server, api_user, make_sensors

FILL_ROLLUP = """
INSERT INTO telemetry_1m (sensor_id, bucket, count, raw_sum, raw_min, raw_max, raw_first,
    raw_last, phys_count, phys_sum, phys_min, phys_max, phys_first, phys_last, first_ts, last_ts)
SELECT sensor_id, date_trunc('minute', ts), count(*), sum(raw_value), min(raw_value),
       max(raw_value), (array_agg(raw_value ORDER BY ts))[1],
       (array_agg(raw_value ORDER BY ts DESC))[1], 0, NULL, NULL, NULL, NULL, NULL,
       min(ts), max(ts)
FROM telemetry WHERE sensor_id = $1 GROUP BY 1, 2
"""


async def fill(database_url: str, sensor_ids: list[str], days: int, end: datetime) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        for sensor in sensor_ids:
            await conn.execute(
                "INSERT INTO telemetry (sensor_id, ts, raw_value, received_at) "
                "SELECT $1::uuid, t, 20 + 5 * sin(extract(epoch FROM t) / 600) + random(), t "
                "FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 second', "
                "interval '1 second') AS t",
                sensor,
                end - timedelta(days=days),
                end,
            )
            await conn.execute(FILL_ROLLUP, sensor)
        await conn.execute("ANALYZE telemetry; ANALYZE telemetry_1m")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def time_requests(http: httpx.AsyncClient, auth: dict, path: str, rounds: int) -> str:
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await http.get(path, headers=auth)
        durations.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    body = response.json()
    q = statistics.quantiles(durations, n=100)
    detail = (
        f"source {body['source']}, bucket {body['bucket_ms']} ms"
        if "source" in body
        else (f"{len(body['items'])} items")
    )
    return f"p50 {statistics.median(durations):.1f} ms, p95 {q[94]:.1f} ms ({detail})"


async def run(args: argparse.Namespace) -> None:
    async with (
        api_server() as (base, _process, database_url),
        httpx.AsyncClient(base_url=base, timeout=120) as http,
    ):
        auth = await api_user(http)
        sensors = [s["id"] for s in await make_sensors(http, auth, args.sensors)]
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        filled_s = await fill(database_url, sensors, args.days, end)
        print(
            f"history: {args.sensors} sensors × {args.days} days at 1 Hz = "
            f"{args.sensors * args.days * 86_400:,} points, filled in {filled_s:.0f} s"
        )

        def window(span: timedelta) -> str:
            return f"from={quote((end - span).isoformat())}&to={quote(end.isoformat())}"

        week, hour = window(timedelta(days=args.days)), window(timedelta(hours=1))
        all_ids, one = ",".join(sensors), sensors[0]
        aggregate = f"{API}/telemetry/aggregate?max_points=2000&sensor_ids="  # per series
        middle = quote((end - timedelta(days=args.days / 2)).isoformat())
        n = args.sensors
        history = f"{API}/telemetry?sensor_ids={all_ids}&limit=1000"
        cases = {
            f"aggregate {n} sensors, {args.days} days": f"{aggregate}{all_ids}&{week}",
            f"aggregate 1 sensor, {args.days} days": f"{aggregate}{one}&{week}",
            f"aggregate {n} sensors, 1 hour": f"{aggregate}{all_ids}&{hour}",
            f"history page of 1000, {n} sensors": f"{history}&from={middle}",
        }
        for name, path in cases.items():
            print(f"  {name}: {await time_requests(http, auth, path, args.rounds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=30)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
