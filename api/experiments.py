"""``/projects/{pid}/experiments``, ``/experiments/{eid}`` and the experiments export.

Also the listing query parameters and the streamed export response that runs share.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, parse_uuid, project_role
from api.idempotency import idempotent
from api.pagination import decode_time_cursor, page, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core import experiments as domain
from core.db import Database
from core.errors import InvalidInput
from core.json import dumps
from core.stores import experiments as store
from core.stores.experiments import ListFilters

bp = Blueprint("experiments", __name__)

EXPORT_FORMATS = ("csv", "json")
EXPORT_CHUNK_ROWS = 500


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)
    experiment_type: str = Field(default="", max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ExperimentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    experiment_type: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None


EXPERIMENT_FIELDS = (
    "id",
    "project_id",
    "name",
    "description",
    "experiment_type",
    "status",
    "tags",
    "metadata",
    "created_by",
    "created_at",
    "updated_at",
    "archived_at",
)


def experiment_json(row: Any) -> dict[str, Any]:
    return {field: row[field] for field in EXPERIMENT_FIELDS}


# Query parameters shared by the experiment and run listings and exports -----------------------


def timestamp_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    value: datetime | None = None
    # An unencoded "+" in a query string arrives as a space: read it as the offset it was.
    for candidate in (raw, raw.replace(" ", "+")):
        try:
            value = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            f"{name} must be an ISO-8601 timestamp with an offset, e.g. 2025-01-31T12:00:00Z",
            details={"field": name},
        )
    return value


def list_arg(name: str) -> tuple[str, ...]:
    """A repeatable parameter that also takes comma lists: ``?tags=a&tags=b,c``."""
    values = [part.strip() for raw in request.args.getlist(name) for part in raw.split(",")]
    return tuple(dict.fromkeys(v for v in values if v))


def listing_filters(statuses: Sequence[str], *, with_experiment: bool = False) -> ListFilters:
    """``status``, ``tags``, ``q``, ``created_after``, ``created_before`` (``experiment_id``)."""
    wanted = list_arg("status")
    unknown = [s for s in wanted if s not in statuses]
    if unknown:
        raise InvalidInput(
            f"status must be among {', '.join(statuses)}",
            details={"field": "status", "allowed": list(statuses)},
        )
    experiment = request.args.get("experiment_id") if with_experiment else None
    query = (request.args.get("q") or "").strip()
    if len(query) > 200:
        raise InvalidInput("q must have at most 200 characters", details={"field": "q"})
    return ListFilters(
        statuses=wanted,
        tags=list_arg("tags"),
        query=query or None,
        created_after=timestamp_arg("created_after"),
        created_before=timestamp_arg("created_before"),
        experiment_id=parse_uuid(experiment, "experiment_id") if experiment else None,
    )


def export_format() -> str:
    value = request.args.get("format", "csv")
    if value not in EXPORT_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(EXPORT_FORMATS)}",
            details={"field": "format", "allowed": list(EXPORT_FORMATS)},
        )
    return value


# Streamed exports ------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        if value.startswith(_FORMULA_STARTS) and not _is_number(value):
            return "'" + value
        return value
    if isinstance(value, bool | dict | list):
        return dumps(value).decode()
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_chunks(rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode()


async def encode_export(
    records: AsyncGenerator[Any, None],
    *,
    fmt: str,
    header: Sequence[str],
    csv_row: Callable[[Any], Sequence[Any]],
    json_item: Callable[[Any], Any],
) -> AsyncGenerator[bytes, None]:
    """The export body in chunks of ``EXPORT_CHUNK_ROWS`` rows (CSV with a header, or a JSON
    array); memory stays constant whatever the number of rows."""
    try:
        # The first row is read before anything is sent, so failing to start is an error answer.
        head = await anext(records, None)
        yield csv_chunks([header]) if fmt == "csv" else b"["
        batch: list[Any] = [] if head is None else [head]
        first = True
        async for record in records:
            batch.append(record)
            if len(batch) == EXPORT_CHUNK_ROWS:
                yield _encode_batch(batch, fmt, csv_row, json_item, first)
                batch, first = [], False
        if batch:
            yield _encode_batch(batch, fmt, csv_row, json_item, first)
        if fmt == "json":
            yield b"]\n"
    finally:
        await records.aclose()


def _encode_batch(
    batch: list[Any],
    fmt: str,
    csv_row: Callable[[Any], Sequence[Any]],
    json_item: Callable[[Any], Any],
    first: bool,
) -> bytes:
    if fmt == "csv":
        return csv_chunks(csv_row(r) for r in batch)
    body = b",\n".join(dumps(json_item(r)) for r in batch)
    return (b"\n" if first else b",\n") + body


async def export_response(
    chunks: AsyncGenerator[bytes, None], *, fmt: str, filename: str
) -> Response:
    """A streamed attachment. The first chunk is produced before answering, so a failure to
    start (database down, bad filter) is a proper error response, not a cut-off download."""
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:  # a client that goes away closes the cursor and frees the connection at once
            await chunks.aclose()

    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = Response(body(), content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    response.timeout = None  # big exports take longer than Quart's default response timeout
    return response


async def _experiment_records(
    db: Database, project: UUID, filters: ListFilters
) -> AsyncGenerator[Any, None]:
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in store.iterate_experiments(conn, project_id=project, filters=filters):
            yield row


# Routes ----------------------------------------------------------------------------------------


@bp.get("/projects/<uuid:project_id>/experiments")
@project("experiment.read")
async def list_experiments(project_id: UUID) -> Response:
    """Newest first; filters ``status``, ``tags`` (all of), ``q``, ``created_after/before``."""
    limit = page_limit()
    filters = listing_filters(domain.EXPERIMENT_STATUSES)
    after = decode_time_cursor()
    async with services().database.acquire() as conn:
        rows = await store.list_experiments(
            conn, project_id=project_id, filters=filters, after=after, limit=limit + 1
        )
    return json_response(
        page(
            rows,
            limit,
            serialise=experiment_json,
            cursor_of=lambda r: (r["created_at"].isoformat(), str(r["id"])),
        )
    )


@bp.post("/projects/<uuid:project_id>/experiments")
@project("experiment.write")
@idempotent
@validate_request(ExperimentIn)
async def create_experiment(project_id: UUID, data: ExperimentIn) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.create_experiment(
            conn,
            project_id=project_id,
            fields=data.model_dump(),
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(experiment_json(row), status=201)


@bp.get("/projects/<uuid:project_id>/experiments/export")
@project("experiment.read")
async def export_experiments(project_id: UUID) -> Response:
    """Every matching experiment as CSV or JSON, streamed (same filters as the listing)."""
    fmt = export_format()
    filters = listing_filters(domain.EXPERIMENT_STATUSES)
    records = _experiment_records(services().database, project_id, filters)
    chunks = encode_export(
        records,
        fmt=fmt,
        header=EXPERIMENT_FIELDS,
        csv_row=lambda r: [r[f] if f != "tags" else ",".join(r[f]) for f in EXPERIMENT_FIELDS],
        json_item=experiment_json,
    )
    return await export_response(chunks, fmt=fmt, filename=f"experiments-{project_id}")


@bp.get("/experiments/<uuid:experiment_id>")
@project("experiment.read")
async def get_experiment(experiment_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.get_experiment(conn, experiment_id=experiment_id)
    return json_response(experiment_json(row))


@bp.patch("/experiments/<uuid:experiment_id>")
@project("experiment.write")
@idempotent
@validate_request(ExperimentPatch)
async def update_experiment(experiment_id: UUID, data: ExperimentPatch) -> Response:
    """Changes name, description, experiment_type, tags (replaced) or metadata (replaced)."""
    async with services().database.acquire() as conn:
        row = await domain.update_experiment(
            conn,
            experiment_id=experiment_id,
            changes=data.model_dump(exclude_unset=True),
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(experiment_json(row))


@bp.delete("/experiments/<uuid:experiment_id>")
@project("experiment.delete")
@idempotent
async def delete_experiment(experiment_id: UUID) -> Response:
    """Deletes it with its runs and capture sessions (owner; refused while a run runs)."""
    async with services().database.acquire() as conn:
        await domain.delete_experiment(
            conn, experiment_id=experiment_id, role=project_role(), audit=audit_context()
        )
    return Response(status=204)


@bp.post("/experiments/<uuid:experiment_id>/archive")
@project("experiment.write")
@idempotent
async def archive_experiment(experiment_id: UUID) -> Response:
    """Archives it (409 while any of its runs is running); archiving twice is harmless."""
    return await _set_status(experiment_id, "archived")


@bp.post("/experiments/<uuid:experiment_id>/unarchive")
@project("experiment.write")
@idempotent
async def unarchive_experiment(experiment_id: UUID) -> Response:
    """Makes an archived experiment active again."""
    return await _set_status(experiment_id, "active")


async def _set_status(experiment_id: UUID, status: str) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.set_experiment_status(
            conn,
            experiment_id=experiment_id,
            status=status,
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(experiment_json(row))
