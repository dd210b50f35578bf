"""``etp-server``: the launcher. Starts Ray, the api and the worker as child processes.

It never imports quart, ray or arq itself: each role runs in its own process, started by
module name, so ``core`` stays framework-free.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from core.errors import AppError
from core.settings import Settings, load_settings

RAY_HEAD_PORT = 6385  # not Ray's default 6379, which is Redis's port
READY_TIMEOUT_S = 120.0


def _fail(message: str, code: int = 2) -> int:
    print(f"etp-server: {message}", file=sys.stderr)
    return code


async def _migrate(settings: Settings) -> None:
    from core.db import connect
    from migrations.runner import apply_migrations

    conn = await connect(settings)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


async def _check_database(settings: Settings) -> None:
    from core.db import connect

    conn = await connect(settings)
    await conn.close()


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from migrations.runner import MigrationError

    try:
        asyncio.run(_migrate(settings))
    except MigrationError as exc:
        return _fail(f"migration refused: {exc}")
    return 0


def _api_argv(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hypercorn",
        "--bind",
        f"{host}:{port}",
        "--worker-class",
        "asyncio",
        "--graceful-timeout",
        "5",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "api.asgi:app",
    ]


def _worker_argv() -> list[str]:
    return [sys.executable, "-m", "arq", "workers.main.WorkerSettings"]


def _ray_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
    ]


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_check_database(settings))
    os.execv(sys.executable, _api_argv(args.host or settings.host, args.port or settings.port))
    return 0  # pragma: no cover


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    asyncio.run(_check_database(settings))
    os.execv(sys.executable, _worker_argv())
    return 0  # pragma: no cover


def cmd_ray(_settings: Settings, args: argparse.Namespace) -> int:
    os.execv(sys.executable, _ray_argv(args.ray_port))
    return 0  # pragma: no cover


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Each child leads its own process group: a terminal's Ctrl-C reaches only the launcher,
    # which stops the children in order, and whatever a child started goes with its group.
    return subprocess.Popen(argv, env=env, start_new_session=True)


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in reversed(children):
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(child, signal.SIGKILL)
        child.wait()


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    if not _port_free(host, port):
        return _fail(f"{host}:{port} is already in use; stop what listens there or pass --port")
    code = cmd_migrate(settings, args)
    if code:
        return code
    env = dict(os.environ)
    if not settings.ray_address and not env.get("RAY_AUTH_TOKEN"):
        # The local head and every process joining it share one fresh token (Ray's token auth).
        env["RAY_AUTH_MODE"] = "token"
        env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # A local head has nothing to drain for: Ctrl-C should stop it at once, not in 30 s.
        env.setdefault("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        print(f"etp-server: received {signal.Signals(signum).name}, stopping", file=sys.stderr)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not settings.ray_address:
            print(f"etp-server: starting a local Ray head on 127.0.0.1:{args.ray_port}")
            children.append(_spawn(_ray_argv(args.ray_port), env))
            env["ETP_RAY_ADDRESS"] = f"127.0.0.1:{args.ray_port}"
            if not _wait_for_ray(env["ETP_RAY_ADDRESS"], children):
                return _fail("the Ray head did not start", 1)
        env.setdefault("ETP_BASE_URL", f"http://{host}:{port}")
        print(f"etp-server: starting the api on {host}:{port} and the worker")
        children.append(_spawn(_api_argv(host, port), env))
        children.append(_spawn(_worker_argv(), env))
        if not _wait_ready(f"http://{host}:{port}/readyz", children):
            return _fail("the stack did not become ready; see the log lines above", 1)
        if args.demo:
            demo = subprocess.run(
                [sys.executable, "-m", "etp_client.demo", "--url", f"http://{host}:{port}"],
                env=env,
                check=False,
            )
            if demo.returncode:
                print("etp-server: demo data could not be created (see above)", file=sys.stderr)
        print(f"etp-server: ready at http://{host}:{port}/  (Ctrl-C stops everything)", flush=True)
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    print(
                        f"etp-server: {_role(child)} exited with {child.returncode}",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop_all(children)
        print("etp-server: stopped", file=sys.stderr)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _role(child: subprocess.Popen[bytes]) -> str:
    args = [str(a) for a in child.args] if isinstance(child.args, list) else [str(child.args)]
    return next((a for a in args if a in ("api.asgi:app", "workers.main.WorkerSettings")), "ray")


def _wait_for_ray(address: str, children: list[subprocess.Popen[bytes]]) -> bool:
    host, _, port = address.partition(":")
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etp-server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations")
    for name, helptext in (
        ("api", "run the HTTP api (Hypercorn)"),
        ("up", "migrate, then run Ray, the api and the worker together"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--host", default=None)
        cmd.add_argument("--port", type=int, default=None)
        cmd.add_argument("--ray-port", type=int, default=RAY_HEAD_PORT)
        if name == "up":
            cmd.add_argument(
                "--demo",
                action="store_true",
                help="create the demo user, project and simulated sensors",
            )
    sub.add_parser("worker", help="run the arq worker")
    ray = sub.add_parser("ray", help="run a local Ray head in the foreground")
    ray.add_argument("--ray-port", type=int, default=RAY_HEAD_PORT)
    return parser


COMMANDS = {
    "migrate": cmd_migrate,
    "api": cmd_api,
    "worker": cmd_worker,
    "ray": cmd_ray,
    "up": cmd_up,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return COMMANDS[args.command](settings, args)
    except AppError as exc:
        return _fail(exc.message)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
