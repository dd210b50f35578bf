"""The capture-session logic: announce the window to the run's sensors, and at stop flush them
(a barrier), then summarise what arrived. Hosted by ``CaptureSessionActor``."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from actors.gateway import SensorGateway
from actors.sensor import datetime_to_us
from core.db import connect
from core.errors import NotFound
from core.settings import Settings

log = logging.getLogger("etp.actors.capture")
GAP_INTERVALS = 3  # a gap is longer than this many expected intervals
MAX_GAPS_LISTED = 100

SESSION_SQL = """
SELECT cs.id, cs.run_id, cs.project_id, cs.status, cs.started_at, cs.stopped_at, cs.ordinal
FROM capture_sessions cs WHERE cs.id = $1
"""
SENSORS_SQL = """
SELECT s.id, s.name, s.expected_rate_hz FROM run_sensors rs JOIN sensors s ON s.id = rs.sensor_id
WHERE rs.run_id = $1 ORDER BY s.name
"""
COUNTS_SQL = """
SELECT sensor_id, count(*) AS points, min(ts) AS first_ts, max(ts) AS last_ts,
       count(*) FILTER (WHERE received_at > $2) AS late_points
FROM telemetry WHERE capture_session_id = $1 GROUP BY sensor_id
"""
# The stop barrier's reconciliation: points flushed before a writer learned of the window's
# start or end are (un)tagged here, and the session's rollup is rebuilt from its points.
UNTAG_AFTER_END_SQL = """
UPDATE telemetry SET capture_session_id = NULL, run_id = NULL
WHERE capture_session_id = $1 AND (ts >= $2 OR ts < $3)
"""
TAG_INSIDE_SQL = """
UPDATE telemetry SET capture_session_id = $1, run_id = $2
WHERE sensor_id = ANY($3::uuid[]) AND ts >= $4 AND ts < $5 AND capture_session_id IS NULL
"""
DROP_ROLLUP_SQL = "DELETE FROM telemetry_session_1m WHERE capture_session_id = $1"
REBUILD_ROLLUP_SQL = """
INSERT INTO telemetry_session_1m (capture_session_id, sensor_id, bucket, count, raw_sum, raw_min,
    raw_max, phys_count, phys_sum, phys_min, phys_max, first_ts, last_ts)
SELECT capture_session_id, sensor_id, date_trunc('minute', ts), count(*), sum(raw_value),
       min(raw_value), max(raw_value), count(physical_value), sum(physical_value),
       min(physical_value), max(physical_value), min(ts), max(ts)
FROM telemetry WHERE capture_session_id = $1 GROUP BY 1, 2, 3
"""
GAPS_SQL = """
SELECT ts - gap AS gap_start, ts AS gap_end, extract(epoch FROM gap) AS gap_s FROM (
    SELECT ts, ts - lag(ts) OVER (ORDER BY ts) AS gap
    FROM telemetry WHERE capture_session_id = $1 AND sensor_id = $2
) g WHERE gap > make_interval(secs => $3) ORDER BY gap DESC
"""


def expected_points(rate_hz: float | None, started: datetime, stopped: datetime) -> float | None:
    if not rate_hz:
        return None
    return max(0.0, (stopped - started).total_seconds() * rate_hz)


class CaptureSession:
    def __init__(self, session_id: UUID, settings: Settings):
        self.session_id = session_id
        self.settings = settings
        self.gateway = SensorGateway(settings)
        self.sensor_ids: list[UUID] = []
        self.state = "new"

    async def _load(self) -> tuple[Any, list[Any]]:
        conn = await connect(self.settings)
        try:
            session = await conn.fetchrow(SESSION_SQL, self.session_id)
            if session is None:
                raise NotFound("capture session not found")
            sensors = await conn.fetch(SENSORS_SQL, session["run_id"])
        finally:
            await conn.close()
        return session, sensors

    async def _announce(self, session: Any, end_us: int | None) -> list[str]:
        start_us = datetime_to_us(session["started_at"])
        results = await asyncio.gather(
            *(
                self.gateway.set_window(
                    sensor_id, self.session_id, session["run_id"], start_us, end_us
                )
                for sensor_id in self.sensor_ids
            ),
            return_exceptions=True,
        )
        return [
            str(sid)
            for sid, r in zip(self.sensor_ids, results, strict=True)
            if isinstance(r, BaseException)
        ]

    async def start(self) -> dict[str, Any]:
        """Tells every sensor of the run that points from ``started_at`` on belong here."""
        session, sensors = await self._load()
        self.sensor_ids = [row["id"] for row in sensors]
        failed = await self._announce(session, None)
        self.state = "running"
        # Sensors not reached now pick the window up from the database within a second.
        return {"sensors": [str(s) for s in self.sensor_ids], "unreached": failed}

    async def stop(self) -> dict[str, Any]:
        """The barrier: close the window on every sensor, wait for their flushes, summarise."""
        session, sensors = await self._load()
        if session["stopped_at"] is None:
            raise NotFound("the capture session has no stop time yet")
        self.sensor_ids = [row["id"] for row in sensors]
        unreached = await self._announce(session, datetime_to_us(session["stopped_at"]))
        flushes = await asyncio.gather(
            *(self.gateway.flush(s) for s in self.sensor_ids), return_exceptions=True
        )
        unflushed = [
            str(s)
            for s, r in zip(self.sensor_ids, flushes, strict=True)
            if isinstance(r, BaseException)
        ]
        await self.reconcile(session)
        summary = await self.summarise(session, sensors)
        summary["unflushed_sensors"] = sorted(set(unreached) | set(unflushed))
        self.state = "stopped"
        return summary

    async def reconcile(self, session: Any) -> None:
        """Makes the session hold exactly the points inside its window, whatever raced."""
        conn = await connect(self.settings)
        try:
            async with conn.transaction():
                await conn.execute(
                    UNTAG_AFTER_END_SQL,
                    self.session_id,
                    session["stopped_at"],
                    session["started_at"],
                )
                await conn.execute(
                    TAG_INSIDE_SQL,
                    self.session_id,
                    session["run_id"],
                    self.sensor_ids,
                    session["started_at"],
                    session["stopped_at"],
                )
                await conn.execute(DROP_ROLLUP_SQL, self.session_id)
                await conn.execute(REBUILD_ROLLUP_SQL, self.session_id)
        finally:
            await conn.close()

    async def summarise(self, session: Any, sensors: list[Any]) -> dict[str, Any]:
        started, stopped = session["started_at"], session["stopped_at"]
        conn = await connect(self.settings)
        try:
            counts = {
                row["sensor_id"]: row
                for row in await conn.fetch(COUNTS_SQL, self.session_id, stopped)
            }
            per_sensor = []
            for sensor in sensors:
                row = counts.get(sensor["id"])
                rate = sensor["expected_rate_hz"]
                points = row["points"] if row else 0
                gaps: list[dict[str, Any]] = []
                gap_total = 0
                if rate and points > 1:
                    threshold_s = GAP_INTERVALS / rate
                    rows = await conn.fetch(GAPS_SQL, self.session_id, sensor["id"], threshold_s)
                    gap_total = len(rows)
                    gaps = [
                        {
                            "start": r["gap_start"].isoformat(),
                            "end": r["gap_end"].isoformat(),
                            "seconds": float(r["gap_s"]),
                        }
                        for r in rows[:MAX_GAPS_LISTED]
                    ]
                expected = expected_points(rate, started, stopped)
                per_sensor.append(
                    {
                        "sensor_id": str(sensor["id"]),
                        "name": sensor["name"],
                        "points": points,
                        "first_ts": row["first_ts"].isoformat() if row else None,
                        "last_ts": row["last_ts"].isoformat() if row else None,
                        "late_points": row["late_points"] if row else 0,
                        "expected_points": round(expected, 1) if expected is not None else None,
                        "coverage": round(min(points / expected, 1.0), 4) if expected else None,
                        "gaps": gaps,
                        "gap_count": gap_total,
                    }
                )
        finally:
            await conn.close()
        coverages = [s["coverage"] for s in per_sensor if s["coverage"] is not None]
        return {
            "duration_s": (stopped - started).total_seconds(),
            "points": sum(s["points"] for s in per_sensor),
            "coverage": round(sum(coverages) / len(coverages), 4) if coverages else None,
            "sensors": per_sensor,
        }

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id),
            "state": self.state,
            "sensors": [str(s) for s in self.sensor_ids],
        }
