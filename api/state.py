"""What a running api process holds: settings and open connections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from quart import current_app

from core.db import Database
from core.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database | None = None
    redis: aioredis.Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> Database:
        assert self.db is not None, "the database pool opens in before_serving"
        return self.db


def services() -> Services:
    return current_app.extensions["etp"]
