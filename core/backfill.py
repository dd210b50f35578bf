"""Backfills: recompute physical values of past points after a profile change.

A backfill covers one profile's window ``[valid_from, valid_to)`` of one sensor (``from`` may
reach further back: the profile's window is then extended to it, which is how a profile is
applied to past data). Points are recomputed with the sensor's whole profile timeline, exactly
as the sensor writer converts live points, so where a newer version overrides this one the
newer one still wins.

The work runs in chunks of ``chunk_points`` points by time, each chunk one transaction that
updates the points, refreshes the touched minutes' rollups, records the chunk and moves the
job's cursor. A worker that dies loses at most its current chunk; the next one resumes from the
cursor. Capture sessions with points in the window show ``backfilling`` until the job ends.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from core.capture import change_capture_status
from core.conversion import NO_PROFILE, Converter, compile_profile, profile_applying_at
from core.errors import Conflict, NotFound
from core.outbox import write_event
from core.principal import AuditContext
from core.profiles import profiles_applying
from core.stores import audit as audit_store
from core.stores import backfill as store
from core.stores import profiles as profiles_store

LIVE_MARGIN_S = 60  # an open window is backfilled up to a minute past the start
PREVIEW_PAGE = 50_000
SYSTEM = AuditContext(actor_id=None, request_id=None)


@dataclass(slots=True)
class Timeline:
    """Which converter applies at a timestamp, like the sensor writer's profile timeline."""

    boundaries: list[datetime] = field(default_factory=list)
    segments: list[tuple[int | None, Converter]] = field(
        default_factory=lambda: [(None, NO_PROFILE)]
    )

    @classmethod
    def build(cls, profiles: Sequence[Mapping[str, Any]]) -> Timeline:
        edges = sorted({p[k] for p in profiles for k in ("valid_from", "valid_to") if p[k]})
        segments: list[tuple[int | None, Converter]] = []
        for start in [datetime.min.replace(tzinfo=UTC), *edges]:
            chosen = profile_applying_at(profiles, start)
            if chosen is None:
                segments.append((None, NO_PROFILE))
            else:
                converter = compile_profile(chosen["kind"], chosen["payload"])
                segments.append((int(chosen["version"]), converter))
        return cls(boundaries=edges, segments=segments)

    def convert(
        self, ts: Sequence[datetime], raw: Sequence[float]
    ) -> tuple[list[float | None], list[str], list[int | None]]:
        """(physical values, statuses, profile versions) of points sorted by ``ts``."""
        physical: list[float | None] = []
        statuses: list[str] = []
        versions: list[int | None] = []
        lo = 0
        for index, (version, converter) in enumerate(self.segments):
            hi = (
                bisect.bisect_left(ts, self.boundaries[index], lo)
                if index < len(self.boundaries)
                else len(ts)
            )
            if hi > lo:
                values, states = converter.convert_many(raw[lo:hi])
                physical += values
                statuses += states
                versions += [version] * (hi - lo)
            lo = hi
        return physical, statuses, versions


@dataclass(frozen=True, slots=True)
class Plan:
    profile: asyncpg.Record
    project_id: UUID
    range_from: datetime
    range_to: datetime
    timeline: Timeline
    extends_window: bool


async def _plan(
    conn: asyncpg.Connection, profile_id: UUID, from_ts: datetime | None, *, lock: bool
) -> Plan:
    found = await profiles_store.fetch_profile(conn, profile_id=profile_id)
    if found is None:
        raise NotFound("profile not found")
    project_id = (
        await profiles_store.lock_sensor_of_profiles(conn, sensor_id=found["sensor_id"])
        if lock
        else await conn.fetchval("SELECT project_id FROM sensors WHERE id = $1", found["sensor_id"])
    )
    profile = await profiles_store.fetch_profile(conn, profile_id=profile_id, lock=lock)
    if project_id is None or profile is None:
        raise NotFound("profile not found")
    if profile["status"] == "draft" or profile["valid_from"] is None:
        raise Conflict(
            "a draft profile converts nothing; activate or schedule it first",
            details={"status": profile["status"]},
        )
    extends = from_ts is not None and from_ts < profile["valid_from"]
    if extends and profile["status"] == "scheduled":
        raise Conflict(
            "a scheduled profile cannot reach back before its start; activate it first",
            details={"status": "scheduled"},
        )
    now = await conn.fetchval("SELECT now()")
    range_from = from_ts or profile["valid_from"]
    range_to = profile["valid_to"] or now + timedelta(seconds=LIVE_MARGIN_S)
    if range_to < range_from:
        raise Conflict(
            "the profile's window has not started: there is nothing to backfill yet",
            details={"valid_from": profile["valid_from"].isoformat()},
        )
    profiles = [dict(p) for p in await profiles_applying(conn, profile["sensor_id"])]
    for item in profiles:
        if item["id"] == profile_id and extends:
            item["valid_from"] = from_ts
    return Plan(profile, project_id, range_from, range_to, Timeline.build(profiles), extends)


async def _audit(
    conn: asyncpg.Connection,
    who: tuple[AuditContext, str | None],
    where: tuple[UUID, UUID],
    action: str,
    after: dict[str, Any],
) -> None:
    """An audit event on the profile; ``who`` is (context, role), ``where`` (project, profile)."""
    (audit, role), (project_id, profile_id) = who, where
    await audit_store.insert_audit_event(
        conn,
        project_id=project_id,
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="conversion_profile",
        entity_id=profile_id,
        after=after,
        request_id=audit.request_id,
    )


class _Stats:
    __slots__ = ("count", "high", "low", "total")

    def __init__(self) -> None:
        self.count, self.total = 0, 0.0
        self.low: float | None = None
        self.high: float | None = None

    def add(self, value: float | None) -> None:
        if value is None:
            return
        self.count += 1
        self.total += value
        self.low = value if self.low is None or value < self.low else self.low
        self.high = value if self.high is None or value > self.high else self.high

    def as_dict(self) -> dict[str, Any]:
        mean = self.total / self.count if self.count else None
        return {"count": self.count, "min": self.low, "max": self.high, "mean": mean}


async def preview_backfill(
    conn: asyncpg.Connection,
    *,
    profile_id: UUID,
    from_ts: datetime | None,
    role: str,
    audit: AuditContext,
    max_points: int,
) -> dict[str, Any]:
    """A dry run: rows in the window, rows that would change, and per capture session the
    physical values' min/max/mean before and after. Beyond ``max_points`` a random sample."""
    plan = await _plan(conn, profile_id, from_ts, lock=False)
    sensor_id = plan.profile["sensor_id"]
    window = {"sensor_id": sensor_id, "range_from": plan.range_from, "range_to": plan.range_to}
    total = await store.count_points(conn, **window)
    sample = 1.0 if total <= max_points else max_points / total
    stats: dict[UUID | None, tuple[_Stats, _Stats]] = {}
    seen = changing = 0
    after: datetime | None = None
    while True:
        rows = await store.fetch_points(
            conn, **window, after=after, limit=PREVIEW_PAGE, sample=sample
        )
        if not rows:
            break
        ts = [r["ts"] for r in rows]
        physical, statuses, versions = plan.timeline.convert(ts, [r["raw_value"] for r in rows])
        for row, new, status, version in zip(rows, physical, statuses, versions, strict=True):
            before_stats, after_stats = stats.setdefault(
                row["capture_session_id"], (_Stats(), _Stats())
            )
            before_stats.add(row["physical_value"])
            after_stats.add(new)
            changing += _stored(row) != (new, status, version)
        seen += len(rows)
        after = ts[-1]
    scale = 1 / sample
    result = {
        "profile_id": profile_id,
        "sensor_id": sensor_id,
        "from": plan.range_from,
        "to": plan.range_to,
        "extends_window": plan.extends_window,
        "rows_in_range": total,
        "rows_changing": round(changing * scale),
        "sampled": sample < 1,
        "rows_examined": seen,
        "sessions": [
            {
                "capture_session_id": session_id,
                "rows": round(before_stats.count * scale),
                "before": before_stats.as_dict(),
                "after": after_stats.as_dict(),
            }
            for session_id, (before_stats, after_stats) in sorted(
                stats.items(), key=lambda item: str(item[0] or "")
            )
        ],
    }
    summary = {k: result[k] for k in ("rows_in_range", "rows_changing", "sampled")}
    bounds = {"from": plan.range_from.isoformat(), "to": plan.range_to.isoformat()}
    where = (plan.project_id, profile_id)
    await _audit(conn, (audit, role), where, "profile.backfill_previewed", summary | bounds)
    return result


def _stored(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return row["physical_value"], row["conversion_status"], row["profile_version"]


def _event(job: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "backfill_id": str(job["id"]),
        "profile_id": str(job["profile_id"]),
        "sensor_id": str(job["sensor_id"]),
        "status": job["status"],
        "from": job["range_from"].isoformat(),
        "to": job["range_to"].isoformat(),
        "rows_done": job["rows_done"],
        "rows_changed": job["rows_changed"],
        "capture_session_ids": [str(s) for s in job["session_ids"]],
    }


async def start_backfill(
    conn: asyncpg.Connection,
    *,
    profile_id: UUID,
    from_ts: datetime | None,
    role: str,
    audit: AuditContext,
    chunk_points: int,
) -> asyncpg.Record:
    """Creates the job (queued), extends the profile's window if asked, marks the affected
    capture sessions ``backfilling`` and records ``backfill.started``; one transaction."""
    async with conn.transaction():
        plan = await _plan(conn, profile_id, from_ts, lock=True)
        sensor_id, who, where = (
            plan.profile["sensor_id"],
            (audit, role),
            (plan.project_id, profile_id),
        )
        if plan.extends_window:
            await store.extend_profile_window(conn, profile_id=profile_id, valid_from=from_ts)
            previous = plan.profile["valid_from"].isoformat()
            change = {"valid_from": plan.range_from.isoformat(), "previous_valid_from": previous}
            await _audit(conn, who, where, "profile.window_extended", change)
        sessions: list[UUID] = []
        for session in await store.list_sessions_in_range(
            conn, sensor_id=sensor_id, range_from=plan.range_from, range_to=plan.range_to
        ):
            if session["status"] in ("succeeded", "archived"):
                await change_capture_status(
                    conn,
                    capture_session_id=session["id"],
                    status="backfilling",
                    role=role,
                    audit=audit,
                )
            if session["status"] in ("succeeded", "archived", "backfilling"):
                sessions.append(session["id"])
        try:
            async with conn.transaction():
                job = await store.insert_job(
                    conn,
                    profile_id=profile_id,
                    sensor_id=sensor_id,
                    project_id=plan.project_id,
                    requested_by=audit.actor_id,
                    range_from=plan.range_from,
                    range_to=plan.range_to,
                    chunk_points=chunk_points,
                    session_ids=sessions,
                    request_id=audit.request_id,
                )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "a backfill of this sensor is already queued or running; wait for it to end",
                details={"sensor_id": str(sensor_id)},
            ) from None
        event = _event(job)
        await _audit(conn, who, where, "profile.backfill_started", event)
        await write_event(
            conn, project_id=plan.project_id, event_type="backfill.started", payload=event
        )
    return job


async def load_timeline(conn: asyncpg.Connection, sensor_id: UUID) -> Timeline:
    return Timeline.build([dict(p) for p in await profiles_applying(conn, sensor_id)])


@dataclass(frozen=True, slots=True)
class ChunkResult:
    rows: int
    changed: int
    finished: bool
    stale_minutes: int = 0


async def run_chunk(
    conn: asyncpg.Connection,
    *,
    backfill_id: UUID,
    lease_token: int,
    timeline: Timeline,
    lease_s: float,
) -> ChunkResult | None:
    """One chunk in one transaction; None when this worker no longer holds the lease."""
    async with conn.transaction():
        job = await store.fetch_job(conn, backfill_id=backfill_id, lease_token=lease_token)
        if job is None:
            return None
        sensor_id = job["sensor_id"]
        points = await store.fetch_points(
            conn,
            sensor_id=sensor_id,
            after=job["cursor_ts"],
            range_from=job["range_from"],
            range_to=job["range_to"],
            limit=job["chunk_points"],
        )
        if not points:
            return ChunkResult(0, 0, finished=True)
        ts = [p["ts"] for p in points]
        physical, statuses, versions = timeline.convert(ts, [p["raw_value"] for p in points])
        changed = [
            i for i, p in enumerate(points) if _stored(p) != (physical[i], statuses[i], versions[i])
        ]

        def pick(values: Sequence[Any]) -> list[Any]:
            return [values[i] for i in changed]

        await store.update_points(
            conn,
            sensor_id=sensor_id,
            ts=pick(ts),
            physical=pick(physical),
            statuses=pick(statuses),
            versions=pick(versions),
        )
        minutes = [minute.replace(second=0, microsecond=0) for minute in pick(ts)]
        stale = await store.refresh_rollups(conn, sensor_id=sensor_id, buckets=minutes)
        count = {"rows": len(points), "changed": len(changed)}
        await store.insert_chunk(
            conn,
            backfill_id=backfill_id,
            chunk_no=job["chunks_done"],
            ts_from=ts[0],
            ts_to=ts[-1],
            lease_token=lease_token,
            **count,
        )
        await store.advance_job(
            conn, backfill_id=backfill_id, cursor_ts=ts[-1], lease_s=lease_s, **count
        )
    return ChunkResult(len(points), len(changed), len(points) < job["chunk_points"], len(stale))


async def finish_backfill(
    conn: asyncpg.Connection,
    *,
    backfill_id: UUID,
    lease_token: int | None,
    status: str,
    error: str | None = None,
) -> asyncpg.Record | None:
    """Ends the job (``succeeded``/``failed``), returns its sessions to their previous status
    (unless another open backfill holds them) and records ``backfill.<finished|failed>``."""
    async with conn.transaction():
        job = (
            await store.fetch_job(conn, backfill_id=backfill_id, lease_token=lease_token)
            if lease_token is not None
            else await store.lock_open_job(conn, backfill_id=backfill_id)
        )
        if job is None:
            return None
        row = await store.end_job(conn, backfill_id=backfill_id, status=status, error=error)
        for session_id in row["session_ids"]:
            if await store.open_jobs_with_session(
                conn, capture_session_id=session_id, except_id=backfill_id
            ):
                continue
            session = await conn.fetchrow(
                "SELECT status, previous_status FROM capture_sessions WHERE id = $1", session_id
            )
            if session is not None and session["status"] == "backfilling":
                previous = session["previous_status"] or "succeeded"
                await change_capture_status(
                    conn, capture_session_id=session_id, status=previous, role=None, audit=SYSTEM
                )
        action = "finished" if status == "succeeded" else "failed"
        event = _event(row)
        where = (row["project_id"], row["profile_id"])
        await _audit(
            conn, (SYSTEM, None), where, f"profile.backfill_{action}", event | {"error": error}
        )
        await write_event(
            conn, project_id=row["project_id"], event_type=f"backfill.{action}", payload=event
        )
    return row
