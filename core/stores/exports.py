"""Export jobs: who may export what, the job rows, and the rows and encodings of runs and run
metrics. Telemetry exports use ``core.telemetry_export`` (the streamed export's formats and
manifest), so a job's file equals what ``GET /telemetry/export`` streams. JSON means JSON lines
(one object per line) for every kind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.authz import check_role
from core.errors import InvalidInput, NotFound
from core.json import dumps
from core.telemetry_export import FORMATS as TELEMETRY_EXPORT_FORMATS
from core.telemetry_export import MEDIA_TYPES, check_format
from core.telemetry_read import resolve_target

KINDS = ("telemetry", "runs", "metrics")
FORMATS = ("csv", "json")
TELEMETRY_FORMATS = TELEMETRY_EXPORT_FORMATS
SENSOR_IDS_MAX = 1000
EXPORT_COLUMNS = (
    "id, project_id, requested_by, kind, format, params, status, progress, storage_key, "
    "row_count, size_bytes, sha256, error, lease_token, attempts, created_at, started_at, "
    "finished_at"
)
CONTENT_TYPES = MEDIA_TYPES  # JSON is JSON lines, as in the streamed telemetry export

_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "id",
        "experiment_id",
        "name",
        "status",
        "tags",
        "params",
        "created_at",
        "started_at",
        "finished_at",
    ),
    "metrics": ("run_id", "name", "step", "value", "ts"),
}


@dataclass(frozen=True, slots=True)
class ExportSpec:
    kind: str
    format: str
    project_id: UUID | None = None
    experiment_id: UUID | None = None
    run_id: UUID | None = None
    capture_session_id: UUID | None = None
    sensor_ids: list[UUID] = field(default_factory=list)
    from_ts: datetime | None = None
    to_ts: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "run_id": self.run_id,
            "capture_session_id": self.capture_session_id,
            "sensor_ids": [str(s) for s in self.sensor_ids],
            "from": self.from_ts.isoformat() if self.from_ts else None,
            "to": self.to_ts.isoformat() if self.to_ts else None,
        }


def _invalid(message: str, field_name: str) -> InvalidInput:
    return InvalidInput(message, details={"field": field_name})


async def _project_of(conn: asyncpg.Connection, sql: str, object_id: UUID, what: str) -> UUID:
    project_id = await conn.fetchval(sql, object_id)
    if project_id is None:
        raise NotFound(f"{what} not found")
    return project_id


async def resolve_project(conn: asyncpg.Connection, *, user_id: UUID, spec: ExportSpec) -> UUID:
    """The project the export belongs to, after checking the caller may export everything it
    names (non-members get 404, like a missing object). Telemetry access is checked by
    ``core.telemetry_read.resolve_target``, the same rule as every telemetry read."""
    formats = TELEMETRY_FORMATS if spec.kind == "telemetry" else FORMATS
    if spec.kind not in KINDS:
        raise _invalid(f"kind must be one of {', '.join(KINDS)}", "kind")
    if spec.format not in formats:
        raise _invalid(f"format must be one of {', '.join(formats)}", "format")
    if spec.from_ts and spec.to_ts and spec.to_ts <= spec.from_ts:
        raise _invalid("to must be after from", "to")
    if spec.kind == "telemetry":
        check_format(spec.format)
        target = await resolve_target(
            conn,
            user_id=user_id,
            sensor_ids=spec.sensor_ids,
            run_id=spec.run_id,
            capture_session_id=spec.capture_session_id,
        )
        project_id = target.home_project_id
    elif spec.kind == "metrics":
        if spec.run_id is None:
            raise _invalid("a metrics export needs run_id", "run_id")
        project_id = await _project_of(
            conn, "SELECT project_id FROM runs WHERE id = $1", spec.run_id, "run"
        )
    elif spec.experiment_id is not None:
        project_id = await _project_of(
            conn,
            "SELECT project_id FROM experiments WHERE id = $1",
            spec.experiment_id,
            "experiment",
        )
    elif spec.project_id is not None:
        project_id = spec.project_id
    else:
        raise _invalid("a runs export needs project_id or experiment_id", "project_id")
    if spec.project_id is not None and spec.project_id != project_id:
        raise NotFound("the named objects are not in that project")
    role = await conn.fetchval(
        "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
        project_id,
        user_id,
    )
    check_role(role, "export.create")
    return project_id


# Job rows ---------------------------------------------------------------------------------


async def insert_export(
    conn: asyncpg.Connection, *, project_id: UUID, requested_by: UUID, spec: ExportSpec
) -> Record:
    row = await conn.fetchrow(
        "INSERT INTO exports (project_id, requested_by, kind, format, params) "
        f"VALUES ($1, $2, $3, $4, $5) RETURNING {EXPORT_COLUMNS}",
        project_id,
        requested_by,
        spec.kind,
        spec.format,
        spec.params(),
    )
    assert row is not None
    return row


async def fetch_export(conn: asyncpg.Connection, *, export_id: UUID) -> Record | None:
    return await conn.fetchrow(f"SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1", export_id)


async def claim_export(
    conn: asyncpg.Connection, *, export_id: UUID, lease_token: int, lease_s: float
) -> Record | None:
    """Starts the export if the job's token is current; None for a stale or duplicate job."""
    return await conn.fetchrow(
        "UPDATE exports SET status = 'running', lease_token = lease_token + 1, "
        "lease_until = now() + make_interval(secs => $3), started_at = now(), progress = 0 "
        "WHERE id = $1 AND lease_token = $2 AND status IN ('queued', 'running') "
        f"RETURNING {EXPORT_COLUMNS}",
        export_id,
        lease_token,
        float(lease_s),
    )


async def set_progress(
    conn: asyncpg.Connection, *, export_id: UUID, lease_token: int, percent: float, lease_s: float
) -> bool:
    result = await conn.execute(
        "UPDATE exports SET progress = $3, lease_until = now() + make_interval(secs => $4) "
        "WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        export_id,
        lease_token,
        percent,
        float(lease_s),
    )
    return result.split()[-1] == "1"


async def finish_export(
    conn: asyncpg.Connection,
    *,
    export_id: UUID,
    lease_token: int,
    status: str,
    storage_key: str | None = None,
    row_count: int | None = None,
    size_bytes: int | None = None,
    sha256: str | None = None,
    error: str | None = None,
) -> Record | None:
    return await conn.fetchrow(
        "UPDATE exports SET status = $3, storage_key = $4, row_count = $5, size_bytes = $6, "
        "sha256 = $7, error = $8, finished_at = now(), lease_until = NULL, "
        "progress = CASE WHEN $3 = 'succeeded' THEN 100 ELSE progress END "
        "WHERE id = $1 AND lease_token = $2 AND status = 'running' "
        f"RETURNING {EXPORT_COLUMNS}",
        export_id,
        lease_token,
        status,
        storage_key,
        row_count,
        size_bytes,
        sha256,
        error,
    )


async def list_stalled_exports(conn: asyncpg.Connection, *, stale_s: float) -> list[Record]:
    """Queued exports nobody started and running ones whose worker stopped renewing."""
    return await conn.fetch(
        "UPDATE exports SET attempts = attempts + 1, "
        "lease_until = now() + make_interval(secs => $1) WHERE id IN (SELECT id FROM exports "
        "WHERE (status = 'queued' AND created_at < now() - make_interval(secs => $1) "
        "AND (lease_until IS NULL OR lease_until < now())) "
        "OR (status = 'running' AND lease_until < now()) FOR UPDATE SKIP LOCKED) "
        "RETURNING id, lease_token, attempts",
        float(stale_s),
    )


async def fail_export(conn: asyncpg.Connection, *, export_id: UUID, error: str) -> Record | None:
    return await conn.fetchrow(
        "UPDATE exports SET status = 'failed', error = $2, finished_at = now(), "
        f"lease_until = NULL WHERE id = $1 AND status IN ('queued', 'running') "
        f"RETURNING {EXPORT_COLUMNS}",
        export_id,
        error,
    )


async def expire_exports(conn: asyncpg.Connection, *, older_than_days: int) -> list[Record]:
    """Marks finished exports past retention expired; returns them (their files go next)."""
    return await conn.fetch(
        "UPDATE exports SET status = 'expired' WHERE status IN ('succeeded', 'failed') "
        "AND finished_at < now() - make_interval(days => $1) RETURNING id, storage_key",
        older_than_days,
    )


# Rows and encodings -----------------------------------------------------------------------


def export_query(kind: str, project_id: UUID, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """(SQL without ORDER BY, arguments) selecting the rows of a runs or metrics export."""
    run_id = params.get("run_id")
    start = datetime.fromisoformat(params["from"]) if params.get("from") else None
    end = datetime.fromisoformat(params["to"]) if params.get("to") else None
    if kind == "runs":
        experiment_id = params.get("experiment_id")
        return (
            "SELECT id, experiment_id, name, status, tags, params, created_at, started_at, "
            "finished_at FROM runs WHERE project_id = $1 "
            "AND ($2::uuid IS NULL OR experiment_id = $2)",
            [project_id, experiment_id and UUID(str(experiment_id))],
        )
    return (
        "SELECT run_id, name, step, value, ts FROM run_metrics WHERE run_id = $1 "
        "AND ($2::timestamptz IS NULL OR ts >= $2) AND ($3::timestamptz IS NULL OR ts < $3)",
        [UUID(str(run_id)), start, end],
    )


ORDER_BY = {"runs": "created_at, id", "metrics": "name, step, ts"}


async def count_rows(conn: asyncpg.Connection, kind: str, sql: str, args: Sequence[Any]) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS rows", *args) or 0)


async def iterate_rows(
    conn: asyncpg.Connection, kind: str, sql: str, args: Sequence[Any], batch: int = 5000
) -> AsyncIterator[list[Record]]:
    """Batches of rows from a server-side cursor (call inside a transaction)."""
    cursor = await conn.cursor(f"{sql} ORDER BY {ORDER_BY[kind]}", *args)
    while rows := await cursor.fetch(batch):
        yield rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return dumps(value).decode()
    return value


def encode_header(kind: str, fmt: str) -> bytes:
    if fmt == "json":
        return b""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(_COLUMNS[kind])
    return buffer.getvalue().encode()


def encode_rows(kind: str, fmt: str, rows: Sequence[Record]) -> bytes:
    columns = _COLUMNS[kind]
    if fmt == "json":
        return b"".join(dumps({c: row[c] for c in columns}) + b"\n" for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([_cell(row[c]) for c in columns] for row in rows)
    return buffer.getvalue().encode()
