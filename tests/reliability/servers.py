"""Running the real app on a loopback Hypercorn server in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from core.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(settings: Settings, *, timeout_s: float = 60.0) -> Iterator[str]:
    """Serves create_app(settings) on 127.0.0.1:<free port> in its own event loop; the base URL."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from api.app import create_app

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    app = create_app(settings)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="etp-hypercorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while True:
        if errors:
            raise RuntimeError("the api server failed to start") from errors[0]
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the api server did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
