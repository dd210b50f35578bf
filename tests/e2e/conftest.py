"""The whole stack for browser tests: ``etp-server up`` on free ports against a fresh database.

Browser scenarios are Node scripts (``tests/e2e/*.mjs``) driving Debian's Chromium through
``playwright-core`` (a devDependency of ``web/``); no browser is ever downloaded. Without
``/usr/bin/chromium`` the tests skip, except in CI (``CI`` set), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from tests.conftest import REDIS_URL, database_url

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
STACK_LOG = ARTIFACTS / "e2e-stack.log"
READY_TIMEOUT_S = 150
SCRIPT_TIMEOUT_S = 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def browser_prerequisites() -> None:
    """Skips (locally) or fails (CI) without the browser; fails when the app is not built."""
    in_ci = bool(os.environ.get("CI"))
    if not CHROMIUM.exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing in CI: run `apt-get install -y chromium`")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium, or ETP_SETUP_BROWSER=1)")
    problems = []
    if shutil.which("node") is None:
        problems.append("node is not on PATH")
    if not (ROOT / "web" / "node_modules" / "playwright-core").is_dir():
        problems.append("web/node_modules lacks playwright-core: run `cd web && npm ci`")
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        problems.append("web/dist is not built: run `make setup` or `cd web && npm run build`")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture(scope="module")
async def e2e_database(template_database: str) -> AsyncIterator[str]:
    """A fresh migrated database for the whole module (the stack keeps it open)."""
    name = f"etp_e2e_{os.getpid()}"
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def e2e_redis() -> str:
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    return REDIS_URL


@dataclass(frozen=True)
class Stack:
    base_url: str
    log: Path


def _stop(launcher: subprocess.Popen[bytes], descendants: list[psutil.Process]) -> None:
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=45)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
    _gone, alive = psutil.wait_procs(descendants, timeout=15)
    for proc in alive:
        proc.kill()


@pytest.fixture(scope="module")
def stack(
    browser_prerequisites: None, e2e_database: str, e2e_redis: str, tmp_path_factory
) -> Iterator[Stack]:
    """``etp-server up`` with its own Ray head; its output goes to test-artifacts/e2e-stack.log."""
    port, ray_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETP_", "RAY_"))}
    env.update(
        {
            "ETP_DATABASE_URL": e2e_database,
            "ETP_REDIS_URL": e2e_redis,
            "ETP_DATA_DIR": str(tmp_path_factory.mktemp("e2e-data")),
            "ETP_RAY_ADDRESS": "",
        }
    )
    ARTIFACTS.mkdir(exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    with STACK_LOG.open("wb") as log:
        launcher = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "etp-server"),
                "up",
                "--host",
                "127.0.0.1",
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
    descendants: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "ready at" not in STACK_LOG.read_text(errors="replace"):
            if launcher.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the stack did not start:\n{_tail(STACK_LOG)}")
            time.sleep(0.25)
        # "ready" is only ours if our launcher still runs (another server may hold the port).
        time.sleep(1)
        if launcher.poll() is not None:
            pytest.fail(f"the stack stopped after starting:\n{_tail(STACK_LOG)}")
        with urllib.request.urlopen(f"{base_url}/", timeout=5) as response:
            assert response.status == 200, "the api does not serve the web app"
        descendants = psutil.Process(launcher.pid).children(recursive=True)
        yield Stack(base_url=base_url, log=STACK_LOG)
    finally:
        if not descendants and launcher.poll() is None:
            descendants = psutil.Process(launcher.pid).children(recursive=True)
        _stop(launcher, descendants)


def run_scenario(stack: Stack, script: str) -> str:
    """Runs one Node scenario against the stack; fails the test with its output unless it passes."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ETP_E2E_BASE_URL": stack.base_url,
        "ETP_E2E_SCREENSHOTS": str(SCREENSHOTS),
        "ETP_E2E_CHROMIUM": str(CHROMIUM),
    }
    try:
        result = subprocess.run(
            ["node", str(Path(__file__).parent / script)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = [
            part.decode(errors="replace") if isinstance(part, bytes) else part or ""
            for part in (exc.stdout, exc.stderr)
        ]
        pytest.fail(f"{script} timed out after {SCRIPT_TIMEOUT_S}s:\n" + "\n".join(partial))
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    if result.returncode != 0:
        pytest.fail(
            f"{script} exited with {result.returncode}\n{output}\n"
            f"--- stack log (tail)\n{_tail(stack.log, 30)}"
        )
    return output
