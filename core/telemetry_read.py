"""Reading telemetry: who may read what, history pages, downsampling, live positions.

A read names its data by sensors, a run or a capture session. The caller must be able to read
every named object (``telemetry.read`` in a project that holds it); a missing or foreign one
answers the same 404 that names nothing.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.authz import role_allows
from core.errors import InvalidInput, NotFound
from core.principal import Principal
from core.stores import telemetry as store

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SENSORS = 100
MAX_POINTS_LIMIT = 10_000
MINUTE = timedelta(minutes=1)
# Bucket widths a chart may get, smallest first; whole minutes from 1 minute on (rollups).
BUCKET_LADDER_MS = (
    1, 2, 5, 10, 20, 50, 100, 200, 500,
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
    60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
    86_400_000, 172_800_000, 604_800_000,
)  # fmt: skip
_NOT_FOUND = "not found, or not readable by you"

# Below every stored timestamp yet inside PostgreSQL's range (0001-01-01T00:00:00Z, in µs):
# the "nothing seen yet" position of a stream.
MIN_TS_US = -62_135_596_800_000_000


def us_to_datetime(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def datetime_to_us(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# What a read names ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorInfo:
    id: UUID
    name: str
    input_unit: str
    display_unit: str
    project_id: UUID  # the project through which the caller reads it


@dataclass(frozen=True, slots=True)
class Target:
    """The sensors of a read, and the run or capture session that narrows it."""

    sensors: tuple[SensorInfo, ...]
    run_id: UUID | None = None
    capture_session_id: UUID | None = None
    project_id: UUID | None = None  # the run's or session's project
    started_at: datetime | None = None  # the run's first or the session's start
    stopped_at: datetime | None = None  # None while running
    session_ids: tuple[UUID, ...] = ()  # the capture sessions whose points the read covers

    @property
    def sensor_ids(self) -> list[UUID]:
        return [s.id for s in self.sensors]

    @property
    def home_project_id(self) -> UUID:
        return self.project_id or self.sensors[0].project_id


def parse_uuid_list(raw: str | None, field_name: str) -> list[UUID]:
    if not raw:
        return []
    try:
        values = list(dict.fromkeys(UUID(part.strip()) for part in raw.split(",") if part.strip()))
    except ValueError:
        raise InvalidInput(
            f"{field_name} must be comma-separated UUIDs", details={"field": field_name}
        ) from None
    if len(values) > MAX_SENSORS:
        raise InvalidInput(f"at most {MAX_SENSORS} {field_name}", details={"field": field_name})
    return values


async def _readable_sensors(
    conn: asyncpg.Connection, user_id: UUID, sensor_ids: Sequence[UUID]
) -> dict[UUID, SensorInfo]:
    rows = await conn.fetch(
        """
        SELECT s.id, s.name, s.input_unit, s.display_unit, m.project_id, m.role
        FROM sensors s
        JOIN project_members m ON m.user_id = $2 AND (m.project_id = s.project_id
             OR m.project_id IN (SELECT project_id FROM sensor_projects WHERE sensor_id = s.id))
        WHERE s.id = ANY($1::uuid[])
        ORDER BY (m.project_id = s.project_id) DESC
        """,
        list(sensor_ids),
        user_id,
    )
    found: dict[UUID, SensorInfo] = {}
    for row in rows:
        if row["id"] not in found and role_allows(row["role"], "telemetry.read"):
            found[row["id"]] = SensorInfo(
                row["id"], row["name"], row["input_unit"], row["display_unit"], row["project_id"]
            )
    return found


async def resolve_target(
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    sensor_ids: Sequence[UUID] = (),
    run_id: UUID | None = None,
    capture_session_id: UUID | None = None,
) -> Target:
    """Checks that the caller may read everything named; 404 naming nothing otherwise."""
    if (run_id is not None) + (capture_session_id is not None) + bool(sensor_ids) == 0:
        raise InvalidInput(
            "name the data with sensor_ids, run_id or capture_session_id",
            details={"field": "sensor_ids"},
        )
    if run_id is not None and capture_session_id is not None:
        raise InvalidInput("give either run_id or capture_session_id", details={"field": "run_id"})
    if run_id is None and capture_session_id is None:
        readable = await _readable_sensors(conn, user_id, sensor_ids)
        if len(readable) != len(sensor_ids):
            raise NotFound(f"a sensor is {_NOT_FOUND}")
        return Target(sensors=tuple(readable[s] for s in sensor_ids))
    what = "run" if run_id is not None else "capture session"
    if run_id is not None:
        row = await conn.fetchrow(
            "SELECT r.id AS run_id, r.project_id, m.role FROM runs r LEFT JOIN project_members m "
            "ON m.project_id = r.project_id AND m.user_id = $2 WHERE r.id = $1",
            run_id,
            user_id,
        )
        sessions = await conn.fetch(
            "SELECT id, started_at, stopped_at FROM capture_sessions "
            "WHERE run_id = $1 AND started_at IS NOT NULL ORDER BY started_at",
            run_id,
        )
    else:
        row = await conn.fetchrow(
            "SELECT c.run_id, c.project_id, m.role FROM capture_sessions c "
            "LEFT JOIN project_members m ON m.project_id = c.project_id AND m.user_id = $2 "
            "WHERE c.id = $1",
            capture_session_id,
            user_id,
        )
        sessions = await conn.fetch(
            "SELECT id, started_at, stopped_at FROM capture_sessions "
            "WHERE id = $1 AND started_at IS NOT NULL",
            capture_session_id,
        )
    if row is None or not role_allows(row["role"], "telemetry.read"):
        raise NotFound(f"{what} {_NOT_FOUND}")
    run_sensors = await conn.fetch(
        "SELECT s.id, s.name, s.input_unit, s.display_unit FROM run_sensors rs "
        "JOIN sensors s ON s.id = rs.sensor_id WHERE rs.run_id = $1 ORDER BY s.created_at, s.id",
        row["run_id"],
    )
    infos = {
        r["id"]: SensorInfo(
            r["id"], r["name"], r["input_unit"], r["display_unit"], row["project_id"]
        )
        for r in run_sensors
    }
    if sensor_ids:
        if any(s not in infos for s in sensor_ids):
            raise NotFound(f"a sensor is {_NOT_FOUND}")
        chosen = tuple(infos[s] for s in sensor_ids)
    else:
        chosen = tuple(infos.values())
    return Target(
        sensors=chosen,
        run_id=run_id,
        capture_session_id=capture_session_id,
        project_id=row["project_id"],
        started_at=sessions[0]["started_at"] if sessions else None,
        stopped_at=(
            max(s["stopped_at"] for s in sessions)
            if sessions and all(s["stopped_at"] for s in sessions)
            else None
        ),
        session_ids=tuple(s["id"] for s in sessions),
    )


async def principal_is_live(conn: asyncpg.Connection, caller: Principal) -> bool:
    """Whether the caller's session or API token still stands (used when re-validating)."""
    if caller.session_id is not None:
        sql = (
            "SELECT 1 FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 "
            "AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active"
        )
        return await conn.fetchval(sql, caller.session_id) is not None
    if caller.token_id is not None:
        sql = (
            "SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1 "
            "AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
            "AND u.is_active"
        )
        return await conn.fetchval(sql, caller.token_id) is not None
    return False


# Time ranges ----------------------------------------------------------------------------------


def parse_time(raw: str | None, field_name: str) -> datetime | None:
    """ISO-8601 with an offset, or epoch milliseconds."""
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return EPOCH + timedelta(milliseconds=int(raw))
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            f"{field_name} must be an ISO-8601 time with an offset, or epoch milliseconds",
            details={"field": field_name},
        )
    return value.astimezone(UTC)


def time_range(
    target: Target, start: datetime | None, end: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The read's range: given bounds, else the run's/session's window, else all time."""
    lo = start or target.started_at or EPOCH
    hi = end or (target.stopped_at + timedelta(microseconds=1) if target.stopped_at else None)
    hi = hi or now + timedelta(minutes=10)
    if hi <= lo:
        raise InvalidInput("to must be after from", details={"field": "to"})
    return lo, hi


# Downsampling ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BucketPlan:
    width: timedelta
    origin: datetime
    start: datetime  # aligned down to a bucket edge
    end: datetime  # aligned up to a bucket edge
    rollup: bool  # whole minutes, minute-aligned: served by the per-minute rollups


def choose_bucket_ms(range_ms: float, max_points: int) -> int:
    """The smallest ladder width that fits the range into ``max_points`` buckets."""
    needed = range_ms / max_points
    for width in BUCKET_LADDER_MS:
        if width >= needed:
            return width
    day = 86_400_000
    return math.ceil(needed / day) * day


def plan_buckets(
    start: datetime, end: datetime, max_points: int, *, origin: datetime = EPOCH
) -> BucketPlan:
    """Bucket width and aligned range; rollups serve whole-minute widths on minute edges."""
    width_ms = choose_bucket_ms((end - start) / timedelta(milliseconds=1), max_points)
    width = timedelta(milliseconds=width_ms)
    rollup = width >= MINUTE and width % MINUTE == timedelta(0)
    if rollup:
        origin = origin.replace(second=0, microsecond=0)  # overlays: at most 59 s early
    first = origin + ((start - origin) // width) * width
    last = origin + -((origin - end) // width) * width
    return BucketPlan(width, origin, first, max(last, first + width), rollup)


def bucket_json(row: Any, origin_offset: datetime | None) -> dict[str, Any]:
    item = {
        "t": row["bucket"],
        "count": row["count"],
        "min": row["min"],
        "max": row["max"],
        "avg": row["avg"],
        "first": row["first"],
        "last": row["last"],
    }
    if origin_offset is not None:
        item["offset_s"] = (row["bucket"] - origin_offset).total_seconds()
    return item


async def aggregate(
    conn: asyncpg.Connection,
    *,
    target: Target,
    start: datetime,
    end: datetime,
    max_points: int,
    physical: bool,
    relative: bool,
    timescale: bool,
) -> dict[str, Any]:
    """min/max/avg/first/last/count per bucket and sensor; extremes are never averaged away."""
    if not 1 <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidInput(
            f"max_points must be from 1 to {MAX_POINTS_LIMIT}", details={"field": "max_points"}
        )
    session_start = target.started_at if relative else None
    if relative and session_start is None:
        raise InvalidInput(
            "relative time needs a capture session or run that has started",
            details={"field": "relative"},
        )
    plan = plan_buckets(start, end, max_points, origin=session_start or EPOCH)
    common: dict[str, Any] = {
        "timescale": timescale,
        "physical": physical,
        "sensor_ids": target.sensor_ids,
        "width": plan.width,
        "origin": plan.origin,
        "start": plan.start,
        "end": plan.end,
    }
    narrowed = target.run_id is not None or target.capture_session_id is not None
    if plan.rollup and narrowed:
        rows = await store.aggregate_session_rollup(conn, session_ids=target.session_ids, **common)
    elif plan.rollup:
        rows = await store.aggregate_rollup(conn, **common)
    else:
        rows = await store.aggregate_raw(
            conn, run_id=target.run_id, capture_session_id=target.capture_session_id, **common
        )
    series: dict[UUID, list[dict[str, Any]]] = {s: [] for s in target.sensor_ids}
    for row in rows:
        series[row["sensor_id"]].append(bucket_json(row, session_start))
    return {
        "bucket_ms": plan.width // timedelta(milliseconds=1),
        "source": ("session_rollup_1m" if narrowed else "rollup_1m") if plan.rollup else "raw",
        "value": "physical" if physical else "raw",
        "from": plan.start,
        "to": plan.end,
        "origin": plan.origin,
        "series": [{"sensor_id": s, "buckets": b} for s, b in series.items()],
    }


# Live positions -------------------------------------------------------------------------------

# A live point: (received_at µs, ts µs, raw, physical, profile version, status, run id).
LivePoint = tuple[int, int, float, float | None, int | None, str, UUID | None]
Position = tuple[int, int]  # (received_at µs, ts µs): a point's place in its sensor's commits


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """Stored points of one sensor in commit order, shared by every client of a channel."""

    sensor_id: str
    points: tuple[LivePoint, ...]


def frames_of(rows: Sequence[Any]) -> list[LiveFrame]:
    """Rows (``core.stores.telemetry`` point columns) as one frame per sensor, in commit order."""
    by_sensor: dict[str, list[LivePoint]] = {}
    for r in rows:
        point = (
            r["r_us"],
            r["ts_us"],
            r["raw_value"],
            r["physical_value"],
            r["profile_version"],
            r["conversion_status"],
            r["run_id"],
        )
        by_sensor.setdefault(str(r["sensor_id"]), []).append(point)
    return [LiveFrame(s, tuple(sorted(p, key=position_of))) for s, p in by_sensor.items()]


def position_of(point: LivePoint) -> Position:
    return point[0], point[1]


@dataclass(slots=True)
class StreamCursor:
    """Per sensor, the commit position of the last point sent; the SSE event id.

    Encoded as base64url of JSON ``[seq, floor_us, {sensor_id: [received_at_us, ts_us]}]``;
    ``seq`` grows by one per event; ``floor_us`` (when the stream began) stands for sensors
    that have sent nothing yet.
    """

    floor_us: int
    positions: dict[str, Position] = field(default_factory=dict)
    seq: int = 0

    def position(self, sensor_id: str) -> Position:
        return self.positions.get(sensor_id, (self.floor_us, MIN_TS_US))

    def take_new(self, frame: LiveFrame, run_id: UUID | None = None) -> list[LivePoint]:
        """The frame's points after this cursor (and of ``run_id``), advancing the cursor."""
        after = self.position(frame.sensor_id)
        fresh = [p for p in frame.points if (p[0], p[1]) > after]
        if fresh:
            self.positions[frame.sensor_id] = position_of(fresh[-1])
        if run_id is not None:
            fresh = [p for p in fresh if p[6] == run_id]
        return fresh

    def encode(self) -> str:
        body = [self.seq, self.floor_us, {k: list(v) for k, v in self.positions.items()}]
        return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")

    @classmethod
    def decode(cls, raw: str, sensor_ids: Sequence[str]) -> StreamCursor:
        try:
            seq, floor_us, positions = orjson.loads(
                base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            )
            return cls(
                floor_us=int(floor_us),
                positions={
                    k: (int(v[0]), int(v[1])) for k, v in positions.items() if k in sensor_ids
                },
                seq=int(seq),
            )
        except (ValueError, TypeError, AttributeError, IndexError, orjson.JSONDecodeError):
            raise InvalidInput(
                "the event id / cursor is not valid; reconnect without it",
                details={"field": "Last-Event-ID"},
            ) from None


def render_points(points: Sequence[LivePoint], physical: bool) -> list[list[Any]]:
    """Points as clients get them: ``[ts_us, value, profile_version, conversion_status]``."""
    return [[p[1], p[3] if physical else p[2], p[4], p[5]] for p in points]
