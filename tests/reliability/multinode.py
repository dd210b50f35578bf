"""Drill: a 3-node Ray cluster, two api processes, 30 sensors, one worker node removed mid-stream.

Run: `python -m tests.reliability.multinode` (prints one JSON summary line, exit code 0 = pass).
Opt-in from pytest with ETP_DRILLS=1 (tests/reliability/test_multinode.py).

Setup: its own Redis (free port) and its own migrated database on the test PostgreSQL
(ETP_TEST_DATABASE_URL); `ray.cluster_utils.Cluster` with a head and two workers (num_cpus=1
each, custom resource `etp_actor` so sensor actors may spread; ETP_ACTOR_RESOURCE pins them);
two Hypercorn api processes joined to the cluster (ETP_RAY_ADDRESS). 30 sensors stream through
both apis (alternating), each retrying a batch until it is acknowledged. After the warm-up the
worker node holding the most sensor actors is removed. Checks: actors were on >1 node; after
removal the affected actors are ALIVE on the remaining nodes; every retry sequence succeeded
within RETRY_BUDGET_S; every acknowledged point is stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from migrations.runner import apply_migrations
from tests.integration.helpers import PASSWORD
from tests.reliability.servers import free_port

BASE_URL = os.environ.get("ETP_TEST_DATABASE_URL", "postgresql://etp:etp@127.0.0.1:5432/etp")
SENSORS = int(os.environ.get("ETP_DRILL_SENSORS", "30"))
BATCH = 10
PERIOD_S = 1.0  # per sensor: BATCH points per PERIOD_S
WARMUP_S = 8.0
AFTER_S = 20.0
RETRY_BUDGET_S = 10.0
RESOURCE = "etp_actor"
# Ray's default (hybrid) policy packs a node up to half its capacity before spreading; small
# capacities spread 30 actors over the 3 nodes, and the two survivors (12 + 20) still hold 30.
HEAD_SLOTS = 12
WORKER_SLOTS = 20
NAMESPACE = f"etp-drill-{os.getpid()}"
ROOT = Path(__file__).resolve().parents[2]


def _db_url(name: str) -> str:
    return f"{BASE_URL.rpartition('/')[0]}/{name}"


async def _create_db(name: str) -> str:
    admin = await asyncpg.connect(_db_url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_db_url(name))
    try:
        await apply_migrations(conn, log=lambda _m: None)
    finally:
        await conn.close()
    return _db_url(name)


async def _drop_db(name: str) -> None:
    admin = await asyncpg.connect(_db_url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.3).close()
            return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open")


async def _setup(api: str, sensors: int) -> tuple[str, list[dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        r = await http.post(
            "/api/v1/auth/register",
            json={"email": "multinode@example.com", "display_name": "Drill", "password": PASSWORD},
        )
        r.raise_for_status()
        r = await http.post(
            "/api/v1/auth/tokens",
            json={"name": "drill"},
            headers={"X-CSRF-Token": r.json()["csrf_token"]},
        )
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await http.post("/api/v1/projects", json={"name": "multinode"}, headers=auth)
        r.raise_for_status()
        pid = r.json()["id"]
        out = []
        for i in range(sensors):
            r = await http.post(
                f"/api/v1/projects/{pid}/sensors", json={"name": f"s{i}"}, headers=auth
            )
            r.raise_for_status()
            out.append(r.json())
        return auth["Authorization"], out


async def _stream(clients, sensor, idx, base_ms, stop_at, acked, stats):
    b = 0
    while time.monotonic() < stop_at():
        points = [{"ts": base_ms + b * BATCH + i, "value": float(i)} for i in range(BATCH)]
        first_fail = None
        for _attempt in range(300):
            http = clients[(idx + b + _attempt) % len(clients)]  # alternate apis, and on retry
            try:
                r = await http.post(
                    "/api/v1/telemetry",
                    json={"points": points},
                    headers={"Authorization": f"Bearer {sensor['token']}"},
                )
                code: Any = r.status_code
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            stats["codes"][str(code)] = stats["codes"].get(str(code), 0) + 1
            if isinstance(code, int) and 200 <= code < 300:
                acked.update(p["ts"] for p in points)
                if first_fail is not None:
                    stats["retry_s"].append(time.monotonic() - first_fail)
                break
            if first_fail is None:
                first_fail = time.monotonic()
            await asyncio.sleep(0.2)
        else:
            stats["gave_up"] += 1
        b += 1
        await asyncio.sleep(PERIOD_S)


def _sensor_actors() -> dict[str, dict[str, Any]]:
    """ALIVE sensor actors of this drill's (own) cluster: name -> node id.

    ray.util.state needs the dashboard, which the drill does not start; the GCS actor table
    (ray._private.state) answers without it.
    """
    import ray._private.state as ray_state

    return {
        a["Name"]: {"node": a["Address"]["NodeID"]}
        for a in ray_state.actors().values()
        if a.get("State") == "ALIVE" and str(a.get("Name", "")).startswith("sensor:")
    }


async def drill() -> dict[str, Any]:
    import ray
    from ray.cluster_utils import Cluster

    summary: dict[str, Any] = {"sensors": SENSORS}
    dbname = f"etp_drill_mn_{os.getpid()}"
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    apis: list[subprocess.Popen[bytes]] = []
    cluster = None
    try:
        _wait_port(redis_port, 10)
        db_url = await _create_db(dbname)
        t0 = time.monotonic()
        cluster = Cluster(
            initialize_head=True,
            connect=True,
            head_node_args={
                "num_cpus": 1,
                "resources": {RESOURCE: HEAD_SLOTS},
                "include_dashboard": False,
            },
            shutdown_at_exit=True,
        )
        workers = [
            cluster.add_node(num_cpus=1, resources={RESOURCE: WORKER_SLOTS}) for _ in range(2)
        ]
        cluster.wait_for_nodes()
        summary["cluster_start_s"] = round(time.monotonic() - t0, 1)
        env = {
            **os.environ,
            "ETP_MODE": "test",
            "ETP_DATABASE_URL": db_url,
            "ETP_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "ETP_RAY_ADDRESS": cluster.address,
            "ETP_RAY_NAMESPACE": NAMESPACE,
            "ETP_ACTOR_RESOURCE": RESOURCE,
            "ETP_SECRET_KEY": "drill-secret-" + "x" * 40,
            "ETP_DATA_DIR": f"/tmp/{dbname}",
            "ETP_BASE_URL": "http://127.0.0.1",
            "ETP_DB_POOL_MIN": "1",
            "ETP_DB_POOL_MAX": "4",
        }
        ports = [free_port(), free_port()]
        for port in ports:
            apis.append(
                subprocess.Popen(
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
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(f"/tmp/{dbname}-api-{port}.log", "wb"),  # noqa: SIM115
                )
            )
        for port, proc in zip(ports, apis, strict=True):
            _wait_port(port, 90, proc)
        _, sensors = await _setup(f"http://127.0.0.1:{ports[0]}", SENSORS)
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        acked: list[set[int]] = [set() for _ in sensors]
        stats: dict[str, Any] = {"codes": {}, "retry_s": [], "gave_up": 0}
        base_ms = int(time.time() * 1000)
        stream_started = time.monotonic()
        stop_at = stream_started + 10_000.0
        tasks = [
            asyncio.create_task(_stream(clients, s, i, base_ms, lambda: stop_at, acked[i], stats))
            for i, s in enumerate(sensors)
        ]
        await asyncio.sleep(WARMUP_S)
        ready_by = time.monotonic() + 90  # actor start-up is slow on a loaded 2-core machine
        while True:
            before = await asyncio.to_thread(_sensor_actors)
            if len(before) >= SENSORS or time.monotonic() > ready_by:
                break
            await asyncio.sleep(1.0)
        summary["actors_ready_s"] = round(time.monotonic() - stream_started, 1)
        stop_at = time.monotonic() + AFTER_S
        nodes_before: dict[str, int] = {}
        for a in before.values():
            nodes_before[a["node"]] = nodes_before.get(a["node"], 0) + 1
        summary["actors_before"] = len(before)
        summary["actors_per_node_before"] = sorted(nodes_before.values(), reverse=True)
        worker_ids = {w.node_id: w for w in workers}
        victim_id = max(worker_ids, key=lambda n: nodes_before.get(n, 0))
        affected = [name for name, a in before.items() if a["node"] == victim_id]
        summary["affected_actors"] = len(affected)
        removed_at = time.monotonic()
        await asyncio.to_thread(cluster.remove_node, worker_ids[victim_id], True)
        summary["remove_node_s"] = round(time.monotonic() - removed_at, 1)
        # How long Ray takes to bring the affected actors back (ALIVE on another node).
        while time.monotonic() < stop_at:
            now = await asyncio.to_thread(_sensor_actors)
            back = [n for n in affected if n in now and now[n]["node"] != victim_id]
            if len(back) == len(affected):
                summary["actors_back_s"] = round(time.monotonic() - removed_at, 1)
                break
            await asyncio.sleep(0.5)
        await asyncio.gather(*tasks)
        for c in clients:
            await c.aclose()
        after = await asyncio.to_thread(_sensor_actors)
        summary["affected_alive_after"] = sum(
            1 for n in affected if n in after and after[n]["node"] != victim_id
        )
        summary["actors_after"] = len(after)
        summary["codes"] = stats["codes"]
        summary["retries"] = len(stats["retry_s"])
        summary["max_retry_s"] = round(max(stats["retry_s"], default=0.0), 2)
        summary["gave_up"] = stats["gave_up"]
        conn = await asyncpg.connect(db_url)
        lost = dups = 0
        try:
            for s, ack in zip(sensors, acked, strict=True):
                rows = await conn.fetch(
                    "SELECT (extract(epoch FROM ts) * 1000)::bigint AS ms "
                    "FROM telemetry WHERE sensor_id = $1",
                    uuid.UUID(s["id"]),
                )
                stored = [r["ms"] for r in rows]
                dups += len(stored) - len(set(stored))
                lost += len(ack - set(stored))
        finally:
            await conn.close()
        summary["acked_points"] = sum(len(a) for a in acked)
        summary["lost"] = lost
        summary["duplicates"] = dups
        problems = []
        if len(nodes_before) < 2:
            problems.append("actors did not spread over more than one node")
        if not affected:
            problems.append("no actor on the removed node")
        if summary["affected_alive_after"] != len(affected):
            problems.append("affected actors did not come back on the remaining nodes")
        if summary["max_retry_s"] > RETRY_BUDGET_S or stats["gave_up"]:
            problems.append("client retries exceeded the budget")
        if lost or dups:
            problems.append("acknowledged points lost or duplicated")
        if "500" in stats["codes"]:
            problems.append("500 answered")
        summary["problems"] = problems
        return summary
    finally:
        for proc in apis:
            proc.terminate()
        for proc in apis:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                proc.kill()
        if cluster is not None:
            with contextlib.suppress(Exception):
                ray.shutdown()
            cluster.shutdown()
        redis.terminate()
        redis.wait(10)
        await _drop_db(dbname)


def main() -> int:
    try:
        summary = asyncio.run(asyncio.wait_for(drill(), 600))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
        return 2
    print(json.dumps(summary))
    return 0 if not summary["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
