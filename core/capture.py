"""Capture sessions and the sensors they record: start, stop, fail, delete, windows.

Status machine (``CAPTURE_TRANSITIONS``)::

    draft -> running | failed
    running -> succeeded | failed
    succeeded -> archived | backfilling
    failed -> archived
    archived -> backfilling
    backfilling -> back to the status it came from (``previous_status``) | failed

Start and stop are safe to repeat: starting while a session runs answers with that session,
stopping an ended session answers with it as it is (``CaptureOutcome.changed`` is False then).
Concurrent starts are serialised by the run's row lock, so exactly one session is created;
the partial unique index ``capture_sessions_one_running`` backs that up.

The telemetry pipeline calls the capture-session actor around ``start_capture_session`` and
``stop_capture_session``; they stay plain database operations here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.errors import Conflict, InvalidInput, NotFound
from core.experiments import clean_text
from core.outbox import EVENT_TYPES, write_event
from core.principal import AuditContext
from core.runs import ENDED_STATUSES
from core.stores import audit as audit_store
from core.stores import capture as store
from core.stores import experiments as experiments_store
from core.stores import runs as runs_store

CAPTURE_STATUSES = ("draft", "running", "succeeded", "failed", "archived", "backfilling")
CAPTURE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"running", "failed"}),
    "running": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset({"archived", "backfilling"}),
    "failed": frozenset({"archived"}),
    "archived": frozenset({"backfilling"}),
    "backfilling": frozenset({"succeeded", "archived", "failed"}),
}
DELETABLE_STATUSES = ("draft", "failed")
RUN_SENSORS_MAX = 1000
NOTES_MAX = 10_000


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    """A session after start/stop; ``changed`` is False when it answered with the state as is."""

    session: Record
    changed: bool


@dataclass(frozen=True, slots=True)
class CaptureWindow:
    """What tags telemetry with a session: its run, its time window and the run's sensors."""

    capture_session_id: UUID
    run_id: UUID
    project_id: UUID
    ordinal: int
    status: str
    started_at: datetime | None
    stopped_at: datetime | None  # None while running
    sensor_ids: tuple[UUID, ...]


def capture_transition_error(
    current: str, target: str, *, previous: str | None = None
) -> Conflict | None:
    """Why a session in ``current`` cannot move to ``target`` (``None``: it can)."""
    allowed = [s for s in CAPTURE_STATUSES if s in CAPTURE_TRANSITIONS[current]]
    if current == "backfilling":  # a backfill returns to where it came from, or fails
        allowed = [s for s in allowed if s in (previous, "failed")]
    if target in allowed:
        return None
    return Conflict(
        f"the capture session is {current} and cannot move to {target}; "
        f"it can move to {', '.join(allowed) or 'nothing'}",
        details={"current_status": current, "requested_status": target, "allowed": allowed},
    )


def _window(row: Record) -> CaptureWindow:
    return CaptureWindow(
        capture_session_id=row["id"],
        run_id=row["run_id"],
        project_id=row["project_id"],
        ordinal=row["ordinal"],
        status=row["status"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        sensor_ids=tuple(row["sensor_ids"]),
    )


async def fetch_capture_window(
    conn: asyncpg.Connection, *, capture_session_id: UUID
) -> CaptureWindow:
    """The session's window and the sensors it records (for the capture-session actor)."""
    row = await store.fetch_window(conn, capture_session_id=capture_session_id)
    if row is None:
        raise NotFound("capture session not found")
    return _window(row)


async def list_running_capture_windows(conn: asyncpg.Connection) -> list[CaptureWindow]:
    """Every running session's window (actors rebuild their state from these after restarts)."""
    return [_window(row) for row in await store.list_running_windows(conn)]


async def get_capture_session(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record:
    row = await store.fetch_session(conn, capture_session_id=capture_session_id)
    if row is None:
        raise NotFound("capture session not found")
    return row


async def start_capture_session(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    role: str,
    audit: AuditContext,
    notes: str = "",
) -> CaptureOutcome:
    """Starts the run's next session; a ``draft`` run moves to ``running`` with it.

    While a session runs, answers with it (``changed=False``). Refused (409) on ended runs and
    in archived experiments.
    """
    notes = clean_text(notes, field="notes", maximum=NOTES_MAX)
    async with conn.transaction():
        run = await runs_store.lock_run(conn, run_id=run_id)
        if run is None:
            raise NotFound("run not found")
        running = await store.fetch_running_session(conn, run_id=run_id)
        if running is not None:
            return CaptureOutcome(running, changed=False)
        if run["status"] in ENDED_STATUSES:
            raise Conflict(
                f"the run is {run['status']}; capture starts only on draft or running runs",
                details={"run_status": run["status"], "allowed": ["draft", "running"]},
            )
        if run["status"] == "draft":
            await _start_run(conn, run, role, audit)
        session = await store.insert_running_session(
            conn,
            run_id=run_id,
            project_id=run["project_id"],
            notes=notes,
            created_by=audit.actor_id,
        )
        await _audit(conn, session, role, audit, "capture_session.started", None, "running")
    return CaptureOutcome(session, changed=True)


async def _start_run(conn: asyncpg.Connection, run: Record, role: str, audit: AuditContext) -> None:
    experiment = await experiments_store.lock_experiment(
        conn, experiment_id=run["experiment_id"], exclusive=False
    )
    if experiment is None or experiment["status"] == "archived":
        raise Conflict(
            "the run's experiment is archived; unarchive it before capturing",
            details={"experiment_status": "archived"},
        )
    [started] = await runs_store.set_runs_status(conn, run_ids=[run["id"]], status="running")
    await audit_store.insert_audit_event(
        conn,
        project_id=run["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action="run.status_changed",
        entity_type="run",
        entity_id=run["id"],
        before={"status": run["status"]},
        after={"status": started["status"], "by": "capture_session.started"},
        request_id=audit.request_id,
    )
    await write_event(
        conn,
        project_id=run["project_id"],
        event_type="run.status_changed",
        payload={"run_id": str(run["id"]), "from": run["status"], "to": started["status"]},
    )


async def stop_capture_session(
    conn: asyncpg.Connection,
    *,
    capture_session_id: UUID,
    role: str,
    audit: AuditContext,
    summary: Mapping[str, Any] | None = None,
    stopped_at: datetime | None = None,
) -> CaptureOutcome:
    """Moves a running session to ``succeeded`` (with ``stopped_at``, default now, and an
    optional summary). An ended session answers as it is; a draft one is refused (409)."""
    async with conn.transaction():
        session = await store.lock_session(conn, capture_session_id=capture_session_id)
        if session is None:
            raise NotFound("capture session not found")
        if session["status"] == "draft":
            raise Conflict(
                "the capture session has not started; there is nothing to stop",
                details={"current_status": "draft"},
            )
        if session["status"] != "running":
            return CaptureOutcome(session, changed=False)
        row = await store.set_session_status(
            conn,
            capture_session_id=capture_session_id,
            status="succeeded",
            previous_status="running",
            stopped_at=stopped_at,
            summary=dict(summary) if summary is not None else None,
        )
        await _audit(conn, row, role, audit, "capture_session.stopped", "running", "succeeded")
    return CaptureOutcome(row, changed=True)


async def begin_stop(conn: asyncpg.Connection, *, capture_session_id: UUID) -> Record | None:
    """Sets the window's end while the session still runs (the stop barrier comes next);
    ``None`` when the session is not running (the caller answers with its state)."""
    return await store.set_stop_time(conn, capture_session_id=capture_session_id)


async def record_capture_summary(
    conn: asyncpg.Connection, *, capture_session_id: UUID, summary: Mapping[str, Any]
) -> Record:
    """Stores the statistics the capture-session actor computed after the stop (derived data:
    no status change and no audit event)."""
    row = await store.set_session_summary(
        conn, capture_session_id=capture_session_id, summary=dict(summary)
    )
    if row is None:
        raise NotFound("capture session not found")
    return row


async def change_capture_status(
    conn: asyncpg.Connection,
    *,
    capture_session_id: UUID,
    status: str,
    role: str | None,
    audit: AuditContext,
    failure_reason: str | None = None,
) -> Record:
    """Any move of the status machine (failing a session, archiving, backfills).

    ``role`` is None when the system acts (an actor or a worker), not a project member.
    """
    if status not in CAPTURE_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(CAPTURE_STATUSES)}", details={"field": "status"}
        )
    async with conn.transaction():
        session = await store.lock_session(conn, capture_session_id=capture_session_id)
        if session is None:
            raise NotFound("capture session not found")
        if session["status"] == status:
            return session
        error = capture_transition_error(
            session["status"], status, previous=session["previous_status"]
        )
        if error is not None:
            raise error
        row = await store.set_session_status(
            conn,
            capture_session_id=capture_session_id,
            status=status,
            previous_status=session["status"],
            failure_reason=failure_reason,
        )
        await _audit(conn, row, role, audit, f"capture_session.{status}", session["status"], status)
    return row


async def delete_capture_session(
    conn: asyncpg.Connection, *, capture_session_id: UUID, role: str, audit: AuditContext
) -> None:
    """Deletes a ``draft`` or ``failed`` session (409 otherwise). Its telemetry is kept."""
    async with conn.transaction():
        session = await store.lock_session(conn, capture_session_id=capture_session_id)
        if session is None:
            raise NotFound("capture session not found")
        if session["status"] not in DELETABLE_STATUSES:
            raise Conflict(
                f"the capture session is {session['status']}; only draft or failed sessions "
                "can be deleted",
                details={"current_status": session["status"], "allowed": list(DELETABLE_STATUSES)},
            )
        await store.delete_session(conn, capture_session_id=capture_session_id)
        await _audit(conn, session, role, audit, "capture_session.deleted", session["status"], None)


# Run sensors ---------------------------------------------------------------------------------


async def set_run_sensors(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    sensor_ids: Sequence[UUID],
    role: str,
    audit: AuditContext,
) -> list[Record]:
    """Replaces the sensors the run's capture sessions record (each readable in the run's
    project); refused while a session runs, whose actor holds the current set."""
    ids = list(dict.fromkeys(sensor_ids))
    if len(ids) > RUN_SENSORS_MAX:
        raise InvalidInput(
            f"a run records at most {RUN_SENSORS_MAX} sensors", details={"field": "sensor_ids"}
        )
    async with conn.transaction():
        run = await runs_store.lock_run(conn, run_id=run_id)
        if run is None:
            raise NotFound("run not found")
        running = await store.fetch_running_session(conn, run_id=run_id)
        if running is not None:
            raise Conflict(
                f"capture session #{running['ordinal']} is running; stop it before changing "
                "the run's sensors",
                details={"capture_session_id": running["id"]},
            )
        readable = await runs_store.fetch_readable_sensor_ids(
            conn, project_id=run["project_id"], sensor_ids=ids
        )
        missing = [sensor_id for sensor_id in ids if sensor_id not in readable]
        if missing:
            raise NotFound(
                f"sensors not found in this project: {', '.join(map(str, missing))}",
                details={"sensor_ids": missing},
            )
        before = await runs_store.fetch_run_sensor_ids(conn, run_id=run_id)
        if set(before) != set(ids):
            await runs_store.replace_run_sensors(conn, run_id=run_id, sensor_ids=ids)
            await audit_store.insert_audit_event(
                conn,
                project_id=run["project_id"],
                actor_id=audit.actor_id,
                actor_role=role,
                action="run.sensors_set",
                entity_type="run",
                entity_id=run_id,
                before={"sensor_ids": sorted(map(str, before))},
                after={"sensor_ids": sorted(map(str, ids))},
                request_id=audit.request_id,
            )
        return await runs_store.list_run_sensors(conn, run_id=run_id)


async def _audit(
    conn: asyncpg.Connection,
    session: Record,
    role: str | None,
    audit: AuditContext,
    action: str,
    before_status: str | None,
    after_status: str | None,
) -> None:
    await audit_store.insert_audit_event(
        conn,
        project_id=session["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="capture_session",
        entity_id=session["id"],
        before=None if before_status is None else {"status": before_status},
        after=None
        if after_status is None
        else {
            "status": after_status,
            "run_id": str(session["run_id"]),
            "ordinal": session["ordinal"],
        },
        request_id=audit.request_id,
    )
    if action in EVENT_TYPES:  # started / stopped / failed become webhook events too
        await write_event(
            conn,
            project_id=session["project_id"],
            event_type=action,
            payload={
                "capture_session_id": str(session["id"]),
                "run_id": str(session["run_id"]),
                "ordinal": session["ordinal"],
                "status": after_status,
                "started_at": _iso(session["started_at"]),
                "stopped_at": _iso(session["stopped_at"]),
                "summary": session["summary"] if action.endswith("stopped") else None,
            },
        )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
