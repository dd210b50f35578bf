"""The SDK is tested against the real stack: ``etp-server up`` (Ray, api, worker) on free ports,
a fresh database copied from the migrated template, and a Redis database of its own.

One stack serves the whole ``tests/sdk`` package (starting it takes ~25 s).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from etp_client import Client, MethodNotAllowed, RouteNotFound
from etp_client.transport import api_base, raise_for_error

from tests.conftest import REDIS_URL, database_url

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 150
PASSWORD = "correct horse battery staple"
SDK_REDIS_DB = 12  # not the integration tests' database, which they flush per test


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_url() -> str:
    head, _, _ = REDIS_URL.rpartition("/")
    return f"{head}/{SDK_REDIS_DB}"


@pytest.fixture(scope="package")
async def sdk_database(template_database: str) -> AsyncIterator[str]:
    """A fresh migrated database for the package (like ``tests/conftest.py``'s ``database``)."""
    name = f"etp_sdk_{os.getpid()}"
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(50):
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
                break
            except asyncpg.ObjectInUseError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="package")
def stack(sdk_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``etp-server up`` on free ports; its base URL. Ctrl-C (SIGINT) stops it afterwards."""
    import redis

    client = redis.Redis.from_url(_redis_url())
    client.flushdb()
    client.close()
    port, ray_port = _free_port(), _free_port()
    data_dir = tmp_path_factory.mktemp("etp-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETP_", "RAY_"))}
    env.update(
        {
            "ETP_DATABASE_URL": sdk_database,
            "ETP_REDIS_URL": _redis_url(),
            "ETP_DATA_DIR": str(data_dir),
            "ETP_RAY_ADDRESS": "",
            # A local head has nothing to drain; Ray's default 30 s drain on SIGTERM would
            # only make every teardown wait for the launcher's kill deadline.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        }
    )
    log_path = data_dir / "stack.log"  # the server's log: read it when a test sees a 500
    with log_path.open("w") as log:
        launcher = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "etp-server"),
                "up",
                "--port",
                str(port),
                "--ray-port",
                str(ray_port),
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and launcher.poll() is None:
            if "ready at" in log_path.read_text(errors="replace"):
                break
            time.sleep(0.25)
        output = log_path.read_text(errors="replace")
        assert "ready at" in output, output[-4000:]
        yield f"http://127.0.0.1:{port}"
    finally:
        descendants = _descendants(launcher.pid)
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)
            try:
                launcher.wait(timeout=45)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
        _gone, alive = psutil.wait_procs(descendants, timeout=20)
        for proc in alive:
            proc.kill()


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing reads or writes the developer's own ~/.config/etp or ETP_* variables."""
    for key in ("ETP_URL", "ETP_TOKEN", "ETP_SENSOR_TOKEN", "ETP_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "etp-config" / "config.json"
    monkeypatch.setenv("ETP_CONFIG", str(path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return path


def register(url: str, *, name: str = "SDK Tester") -> dict[str, Any]:
    """A new user through the public API: email, password and a personal API token."""
    email = f"sdk-{secrets.token_hex(4)}@example.com"
    with httpx.Client(base_url=api_base(url), timeout=30) as http:
        response = http.post(
            "/auth/register", json={"email": email, "display_name": name, "password": PASSWORD}
        )
        raise_for_error(response)
        csrf = {"X-CSRF-Token": response.json()["csrf_token"]}
        response = http.post("/auth/tokens", json={"name": "sdk tests"}, headers=csrf)
        raise_for_error(response)
        token = response.json()["token"]
    return {"email": email, "password": PASSWORD, "token": token}


@pytest.fixture
def user(stack: str) -> dict[str, Any]:
    return register(stack)


@pytest.fixture
def client(stack: str, user: dict[str, Any]) -> Iterator[Client]:
    with Client(stack, user["token"]) as api:
        yield api


@pytest.fixture
def project(client: Client) -> dict[str, Any]:
    return dict(client.create_project(f"sdk project {secrets.token_hex(3)}"))


@contextmanager
def route_required() -> Iterator[None]:
    """Skips the test when the server answers that the route itself does not exist (its own
    404 "no such resource" or 405) — a feature another issue has not landed yet. Any other
    error, including a 404 for a missing object, fails the test."""
    try:
        yield
    except (RouteNotFound, MethodNotAllowed) as exc:
        pytest.skip(f"server route not available yet: {exc.message}")
