"""One Redis subscription per api process for control events (token revocations, access
changes); handlers run in-process. Reconnects by itself; events missed while Redis is down only
delay cache expiry (caches have short TTLs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("etp.api.events")
Handler = Callable[[bytes], Any]


class ControlEvents:
    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.handlers: dict[str, list[Handler]] = {}
        self.task: asyncio.Task[None] | None = None

    def on(self, channel: str, handler: Handler) -> None:
        self.handlers.setdefault(channel, []).append(handler)

    def start(self) -> None:
        if self.handlers and self.task is None:
            self.task = asyncio.create_task(self._run(), name="etp-control-events")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _run(self) -> None:
        backoff_s = 0.5
        while True:
            client = aioredis.from_url(self.redis_url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*self.handlers)
                backoff_s = 0.5
                async for message in pubsub.listen():
                    channel = message["channel"].decode()
                    for handler in self.handlers.get(channel, []):
                        try:
                            result = handler(message["data"])
                            if asyncio.iscoroutine(result):
                                await result
                        except Exception:  # one bad handler never stops the loop
                            log.exception(
                                "control event handler failed", extra={"channel": channel}
                            )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: wait, then subscribe again
                log.warning(
                    "control events lost their Redis connection",
                    extra={"error": str(exc)[:200], "retry_in_s": backoff_s},
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)
            finally:
                # Closing a dead connection may fail; there is nothing left to keep.
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
