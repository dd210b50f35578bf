"""One frozen settings object, read once from ``ETP_*`` environment variables.

Settings are passed explicitly: the api, Ray actors and arq workers are separate processes and
each receives the object (it pickles) instead of reading the environment again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import ConfigError

MODES = ("local", "production", "test")


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "etp")


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str = "local"
    database_url: str = "postgresql://etp:etp@127.0.0.1:5432/etp"
    redis_url: str = "redis://127.0.0.1:6379/0"
    ray_address: str = ""
    ray_namespace: str = "etp"
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"
    cors_origins: tuple[str, ...] = ()
    data_dir: str = field(default_factory=_default_data_dir)
    log_level: str = "INFO"
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_command_timeout_s: float = 30.0
    # Telemetry ingest and actors.
    ingest_max_points: int = 10_000
    ingest_max_bytes: int = 5 * 1024 * 1024
    ingest_max_past_s: int = 366 * 24 * 3600
    ingest_max_future_s: int = 300
    sensor_rate_points_per_s: float = 20_000.0
    sensor_burst_points: int = 100_000
    flush_max_points: int = 5_000
    flush_interval_ms: int = 0  # optional commit delay; 0 = group commit at once
    sensor_buffer_max_points: int = 200_000
    sensor_actors: str = "dedicated"
    actor_idle_s: float = 300.0
    actor_call_timeout_s: float = 30.0
    # A custom Ray resource that only actor-hosting nodes offer (e.g. "etp_actors"); empty:
    # actors go wherever Ray puts them. Each actor asks for one unit (a slot) of it.
    actor_resource: str = ""
    # Sensor status thresholds.
    sensor_delayed_missed_intervals: int = 3
    sensor_delayed_after_s: float = 10.0
    sensor_offline_after_s: float = 60.0
    # Identity.
    session_idle_timeout_s: int = 7 * 24 * 3600
    session_absolute_timeout_s: int = 30 * 24 * 3600
    login_attempts_per_account: str = "10/15 minutes"
    login_attempts_per_address: str = "50/15 minutes"
    smtp_url: str = ""
    mail_from: str = "etp@localhost"
    # Retention and workers.
    audit_retention_days: int = 400
    webhook_allowlist: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.mode == "production"

    @property
    def packed_hosts(self) -> int:
        """Number of host actors with ``packed:<N>`` placement, 0 for dedicated actors."""
        if self.sensor_actors == "dedicated":
            return 0
        return int(self.sensor_actors.split(":", 1)[1])

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


_INT_FIELDS = {f.name for f in fields(Settings) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in fields(Settings) if f.type in ("float", float)}
_TUPLE_FIELDS = {f.name for f in fields(Settings) if str(f.type).startswith("tuple")}


def _parse(name: str, raw: str) -> Any:
    env_name = "ETP_" + name.upper()
    try:
        if name in _INT_FIELDS:
            return int(raw)
        if name in _FLOAT_FIELDS:
            return float(raw)
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a number") from None
    if name in _TUPLE_FIELDS:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if name == "secret_key":
        return Secret(raw)
    return raw


def _check(settings: Settings) -> None:
    if settings.mode not in MODES:
        raise ConfigError(f"ETP_MODE must be one of {', '.join(MODES)}, not {settings.mode!r}")
    if urlsplit(settings.database_url).scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            "ETP_DATABASE_URL must start with postgresql:// (got scheme "
            f"{urlsplit(settings.database_url).scheme!r})"
        )
    if urlsplit(settings.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"ETP_REDIS_URL must start with redis://, rediss:// or unix:// (got scheme "
            f"{urlsplit(settings.redis_url).scheme!r})"
        )
    if urlsplit(settings.base_url).scheme not in ("http", "https"):
        raise ConfigError("ETP_BASE_URL must be an http:// or https:// URL")
    placement = settings.sensor_actors
    if placement != "dedicated":
        kind, _, count = placement.partition(":")
        if kind != "packed" or not count.isdigit() or int(count) < 1:
            raise ConfigError("ETP_SENSOR_ACTORS must be 'dedicated' or 'packed:<N>' with N >= 1")
    if settings.flush_max_points < 1 or settings.flush_interval_ms < 0:
        raise ConfigError("ETP_FLUSH_MAX_POINTS must be positive, ETP_FLUSH_INTERVAL_MS >= 0")
    if settings.is_production and len(settings.secret_key.get()) < 32:
        raise ConfigError(
            "ETP_SECRET_KEY is missing or shorter than 32 characters; production mode refuses to "
            "start without it (generate one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')"
        )


def _local_secret(data_dir: str) -> Secret:
    """Reads, or creates once, the local-mode secret key kept outside the repository."""
    path = Path(data_dir) / "secret_key"
    if path.exists():
        return Secret(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return Secret(value)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from ``ETP_*`` variables (``os.environ`` by default)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get("ETP_" + f.name.upper())
        if raw is not None and raw != "":
            values[f.name] = _parse(f.name, raw)
        elif raw == "" and f.name == "ray_address":
            values[f.name] = ""
    settings = Settings(**values)
    _check(settings)
    if not settings.secret_key and not settings.is_production:
        settings = settings.replace(secret_key=_local_secret(settings.data_dir))
    return settings
