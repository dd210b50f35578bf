"""The outbox: events exist exactly when their change commits, and every committed event is
delivered even if Redis loses the job or the worker process is killed mid-way.

Also the shared pieces of the worker tests: a loopback webhook receiver, an in-process worker,
a real worker process, and fast worker settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool

from core.jobs import WorkerConfig
from core.outbox import write_event
from core.settings import Settings
from tests.integration.helpers import create_project, register
from workers.setup import build_worker, lifespan
from workers.webhooks import relay_outbox

ROOT = Path(__file__).resolve().parents[2]
# Worker tests use a Redis database nobody else is connected to and a queue of their own: the
# shared test database (9) is flushed by every test of any concurrent run, and any other
# worker on the same queue (a launcher test's, a developer's `etp-server up`) takes jobs.
QUEUE = f"arq:queue:etp-test-{os.getpid()}"
_chosen_db: list[int] = []
FAST = WorkerConfig(
    worker_queue=QUEUE,
    worker_sweep_interval_s=1,
    relay_stale_s=1.0,
    webhook_timeout_s=2.0,
    webhook_retry_base_s=0.1,
    webhook_retry_max_delay_s=0.4,
    webhook_retry_window_s=120.0,
    job_lease_s=10.0,
    backfill_slice_s=2.0,
)
FAST_ENV = {
    "ETP_WORKER_QUEUE": QUEUE,
    "ETP_WORKER_SWEEP_INTERVAL_S": "1",
    "ETP_RELAY_STALE_S": "1",
    "ETP_WEBHOOK_TIMEOUT_S": "2",
    "ETP_WEBHOOK_RETRY_BASE_S": "0.1",
    "ETP_WEBHOOK_RETRY_MAX_DELAY_S": "0.4",
    "ETP_JOB_LEASE_S": "10",
    "ETP_BACKFILL_SLICE_S": "2",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server on loopback: answers 500 to the first ``fail_first`` attempts of
    each webhook-id, then 200 (or always a redirect)."""

    fail_first: int = 0
    delay_s: float = 0.0
    redirect_to: str | None = None
    requests: list[Received] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/hook"

    async def start(self) -> Receiver:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(head[0].split(" ")[1], headers, body))
            webhook_id = headers.get("webhook-id", "")
            self.attempts[webhook_id] += 1
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.redirect_to:
                status, extra = "307 Temporary Redirect", f"Location: {self.redirect_to}\r\n"
            elif self.attempts[webhook_id] <= self.fail_first:
                status, extra = "500 Internal Server Error", ""
            else:
                status, extra = "200 OK", ""
                self.succeeded[webhook_id] += 1
            text = b"ok" if status.startswith("200") else b"not yet"
            writer.write(
                f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(text)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + text
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout_s: float, interval_s: float = 0.1
) -> Any:
    """Polls ``check`` until it returns something truthy; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s (last: {value!r})")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, config: WorkerConfig = FAST) -> AsyncIterator[Any]:
    """An arq worker on the test's event loop (crons included)."""
    worker = build_worker(settings, config, handle_signals=False, poll_delay=0.05)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # arq's own close() stops before on_shutdown when a job was cancelled, so: cancel the
        # jobs and the loop, wait for them, then close everything ourselves.
        worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(task, *worker.tasks.values(), return_exceptions=True)
        await worker.on_shutdown(worker.ctx)
        await worker.pool.delete(worker.health_check_key)
        await worker.pool.aclose(close_connection_pool=True)


@contextlib.asynccontextmanager
async def worker_ctx(settings: Settings, config: WorkerConfig = FAST) -> AsyncIterator[dict]:
    """The ``ctx`` a job gets, for calling jobs directly."""
    redis = await create_pool(
        RedisSettings.from_dsn(settings.redis_url), default_queue_name=config.queue_name
    )
    ctx: dict[str, Any] = {"redis": redis}
    on_startup, on_shutdown = lifespan(settings, config, standalone=False)
    await on_startup(ctx)
    try:
        yield ctx
    finally:
        await on_shutdown(ctx)
        await redis.aclose()


def spawn_worker(settings: Settings, log_path: Path, **env: str) -> subprocess.Popen[bytes]:
    """``arq workers.main.WorkerSettings`` as a real process on the test's database and Redis."""
    full_env = {
        **os.environ,
        **FAST_ENV,
        "ETP_MODE": "test",
        "ETP_DATABASE_URL": settings.database_url,
        "ETP_REDIS_URL": settings.redis_url,
        "ETP_SECRET_KEY": settings.secret_key.get(),
        "ETP_DATA_DIR": settings.data_dir,
        "ETP_WEBHOOK_ALLOWLIST": ",".join(settings.webhook_allowlist),
        "ETP_RAY_ADDRESS": "",
        "ETP_LOG_LEVEL": "WARNING",
        **env,
    }
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "arq", "workers.main.WorkerSettings"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


async def private_redis(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``settings`` on a Redis database of this run's own (flushed) and its own queue, which
    the api finds in ``ETP_WORKER_QUEUE``."""
    head, _, _ = settings.redis_url.rpartition("/")
    client = aioredis.from_url(settings.redis_url)
    try:
        if not _chosen_db:
            busy = {int(c["db"]) for c in await client.client_list()}
            _chosen_db.append(next((db for db in (15, 14, 11, 10) if db not in busy), 15))
        url = f"{head}/{_chosen_db[0]}"
    finally:
        await client.aclose()
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    monkeypatch.setenv("ETP_WORKER_QUEUE", QUEUE)
    return settings.replace(redis_url=url)


@pytest.fixture
async def settings(settings, monkeypatch):
    return await private_redis(settings.replace(webhook_allowlist=("localhost",)), monkeypatch)


async def _subscribe(owner, project_id: str, url: str) -> dict[str, Any]:
    return await owner.json(
        "POST",
        f"/api/v1/projects/{project_id}/webhooks",
        201,
        json={"url": url, "event_types": ["*"]},
    )


async def _status_counts(db) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM webhook_messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def test_an_event_exists_only_if_its_transaction_commits(app, db):
    owner = await register(app)
    project = await create_project(owner)
    with contextlib.suppress(RuntimeError):
        async with db.transaction():
            await write_event(
                db, project_id=project["id"], event_type="run.status_changed", payload={"n": 1}
            )
            raise RuntimeError("the change fails")
    async with db.transaction():
        await write_event(
            db, project_id=project["id"], event_type="run.status_changed", payload={"n": 2}
        )
    rows = await db.fetch("SELECT payload FROM outbox WHERE event_type = 'run.status_changed'")
    assert [r["payload"] for r in rows] == [{"n": 2}]


async def test_a_job_lost_by_redis_is_enqueued_again_and_delivered(app, db, settings):
    receiver = await Receiver().start()
    try:
        owner = await register(app)
        project = await create_project(owner)
        await _subscribe(owner, project["id"], receiver.url)
        for n in range(5):
            await write_event(
                db, project_id=project["id"], event_type="export.ready", payload={"n": n}
            )
        async with worker_ctx(settings) as ctx:
            assert await relay_outbox(ctx) == 5  # fanned out, first attempts enqueued
            queue: ArqRedis = ctx["redis"]
            assert await queue.zcard(QUEUE) >= 5
            await queue.flushdb()  # Redis loses every job between commit and run
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE done_at IS NULL") == 0
        async with running_worker(settings):
            await wait_for(lambda: _all_succeeded(db, 5), 15)
        assert sorted(receiver.succeeded.values()) == [1] * 5
    finally:
        await receiver.stop()


async def _all_succeeded(db, count: int) -> bool:
    return (await _status_counts(db)).get("succeeded", 0) == count


@pytest.mark.timeout(90)
async def test_killing_the_worker_mid_way_loses_no_delivery(app, db, settings, tmp_path):
    receiver = await Receiver(delay_s=0.02).start()
    try:
        owner = await register(app)
        project = await create_project(owner)
        await _subscribe(owner, project["id"], receiver.url)
        async with db.transaction():
            for n in range(200):
                await write_event(
                    db, project_id=project["id"], event_type="run.status_changed", payload={"n": n}
                )
        first = spawn_worker(settings, tmp_path / "worker.log")
        try:
            await wait_for(lambda: _succeeded_at_least(receiver, 40), 40, 0.02)
        finally:
            kill(first)
        done_at_kill = len(receiver.succeeded)
        assert 0 < done_at_kill < 200, "the kill must land mid-way"
        pending = await _status_counts(db)
        assert pending.get("succeeded", 0) < 200
        second = spawn_worker(settings, tmp_path / "worker.log")
        try:
            await wait_for(lambda: _all_succeeded(db, 200), 45, 0.2)
        finally:
            kill(second)
    finally:
        await receiver.stop()
    payloads = {int(r.body.split(b'"n":')[1].split(b"}")[0]) for r in receiver.requests}
    assert payloads == set(range(200)), "every event reached the receiver"
    assert len(receiver.succeeded) == 200
    # At-least-once: only attempts in flight at the kill can have been answered twice.
    assert sum(receiver.succeeded.values()) - 200 <= FAST.worker_max_jobs
    assert await db.fetchval("SELECT count(*) FROM webhook_messages WHERE attempts < 1") == 0


async def _succeeded_at_least(receiver: Receiver, count: int) -> bool:
    return len(receiver.succeeded) >= count
