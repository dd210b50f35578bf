"""Runs: ``/experiments/{eid}/runs``, ``/projects/{pid}/runs`` (search and export),
``/runs/{rid}`` with its status and sensors, and the bulk ``/runs:batch-status`` and
``/runs:bulk-tags``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import audit_context, principal, project_id, project_role
from api.experiments import (
    encode_export,
    export_format,
    export_response,
    listing_filters,
)
from api.idempotency import idempotent
from api.pagination import decode_cursor, page, page_limit
from api.policy import project, user
from api.responses import json_response
from api.state import services
from core import capture as capture_domain
from core import runs as domain
from core.db import Database
from core.errors import InvalidInput
from core.stores import runs as store
from core.stores.experiments import ListFilters, Sort

bp = Blueprint("runs", __name__)

SORTS = {
    "-created_at": Sort("created_at", descending=True),
    "created_at": Sort("created_at", descending=False),
    "name": Sort("name", descending=False),
    "-name": Sort("name", descending=True),
}


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    git_sha: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=100)
    notes: str = Field(default="", max_length=50_000)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RunPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = None
    env: dict[str, Any] | None = None
    git_sha: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(default=None, max_length=100)
    notes: str | None = Field(default=None, max_length=50_000)
    metadata: dict[str, Any] | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str


class BatchStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[UUID] = Field(min_length=1, max_length=domain.BULK_MAX_RUNS)
    status: str


class BulkTagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[UUID] = Field(min_length=1, max_length=domain.BULK_MAX_RUNS)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


class SensorsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sensor_ids: list[UUID] = Field(max_length=capture_domain.RUN_SENSORS_MAX)


RUN_FIELDS = (
    "id",
    "experiment_id",
    "project_id",
    "name",
    "status",
    "params",
    "env",
    "git_sha",
    "tags",
    "notes",
    "metadata",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "duration_seconds",
)
# CSV columns before the flattened ``param.<key>`` ones.
RUN_CSV_FIELDS = tuple(f for f in RUN_FIELDS if f != "params")


def run_json(row: Any) -> dict[str, Any]:
    return {field: row[field] for field in RUN_FIELDS}


def sensor_json(row: Any) -> dict[str, Any]:
    return dict(row)


def _sort() -> Sort:
    raw = request.args.get("sort", "-created_at")
    if raw not in SORTS:
        raise InvalidInput(
            f"sort must be one of {', '.join(SORTS)}",
            details={"field": "sort", "allowed": list(SORTS)},
        )
    return SORTS[raw]


def _after(sort: Sort) -> tuple[Any, UUID] | None:
    """The keyset from ``?cursor=`` (made by the same sort)."""
    cursor = decode_cursor(3)
    if cursor is None:
        return None
    sort_name, value, last_id = cursor
    try:
        if SORTS.get(sort_name) != sort or not isinstance(value, str):
            raise ValueError("another sort")
        key: Any = datetime.fromisoformat(value) if sort.column == "created_at" else value
        return key, UUID(last_id)
    except (TypeError, ValueError):
        raise InvalidInput(
            "cursor is not valid for this sort; use next_cursor from a previous page",
            details={"field": "cursor"},
        ) from None


async def _run_page(project: UUID, filters: ListFilters) -> Response:
    limit = page_limit()
    sort = _sort()
    after = _after(sort)
    sort_name = next(name for name, value in SORTS.items() if value == sort)
    async with services().database.acquire() as conn:
        rows = await store.list_runs(
            conn, project_id=project, filters=filters, sort=sort, after=after, limit=limit + 1
        )

    def cursor_of(row: Any) -> list[Any]:
        value = row[sort.column]
        return [sort_name, value.isoformat() if isinstance(value, datetime) else value, row["id"]]

    return json_response(page(rows, limit, serialise=run_json, cursor_of=cursor_of))


@bp.get("/experiments/<uuid:experiment_id>/runs")
@project("run.read")
async def list_experiment_runs(experiment_id: UUID) -> Response:
    """Filters ``status``, ``tags`` (all of), ``q``, ``created_after/before``; ``sort`` is
    ``-created_at`` (default), ``created_at``, ``name`` or ``-name``."""
    filters = listing_filters(domain.RUN_STATUSES)
    return await _run_page(project_id(), _with_experiment(filters, experiment_id))


def _with_experiment(filters: ListFilters, experiment_id: UUID) -> ListFilters:
    return ListFilters(
        statuses=filters.statuses,
        tags=filters.tags,
        query=filters.query,
        created_after=filters.created_after,
        created_before=filters.created_before,
        experiment_id=experiment_id,
    )


@bp.get("/projects/<uuid:project_id>/runs")
@project("run.read")
async def search_project_runs(project_id: UUID) -> Response:
    """Every run of the project; the experiment filters plus ``experiment_id``."""
    filters = listing_filters(domain.RUN_STATUSES, with_experiment=True)
    return await _run_page(project_id, filters)


@bp.post("/experiments/<uuid:experiment_id>/runs")
@project("run.write")
@idempotent
@validate_request(RunIn)
async def create_run(experiment_id: UUID, data: RunIn) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.create_run(
            conn,
            experiment_id=experiment_id,
            fields=data.model_dump(),
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(run_json(row), status=201)


@bp.get("/runs/<uuid:run_id>")
@project("run.read")
async def get_run(run_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        row = await domain.get_run(conn, run_id=run_id)
    return json_response(run_json(row))


@bp.patch("/runs/<uuid:run_id>")
@project("run.write")
@idempotent
@validate_request(RunPatch)
async def update_run(run_id: UUID, data: RunPatch) -> Response:
    """params merge (write-once per key); tags and metadata are replaced; git_sha and env
    change only while the run is draft."""
    async with services().database.acquire() as conn:
        row = await domain.update_run(
            conn,
            run_id=run_id,
            changes=data.model_dump(exclude_unset=True),
            role=project_role(),
            audit=audit_context(),
        )
    return json_response(run_json(row))


@bp.post("/runs/<uuid:run_id>/status")
@project("run.write")
@idempotent
@validate_request(StatusIn)
async def change_run_status(run_id: UUID, data: StatusIn) -> Response:
    """draft → running → succeeded | failed → archived; 409 names the allowed moves."""
    async with services().database.acquire() as conn:
        row = await domain.change_run_status(
            conn, run_id=run_id, status=data.status, role=project_role(), audit=audit_context()
        )
    return json_response(run_json(row))


@bp.post("/runs:batch-status")
@user
@idempotent
@validate_request(BatchStatusIn)
async def batch_status(data: BatchStatusIn) -> Response:
    """All-or-nothing; 409 with ``details.failures`` [{run_id, code, message}] otherwise."""
    async with services().database.acquire() as conn:
        rows = await domain.change_runs_status(
            conn,
            principal=principal(),
            run_ids=data.run_ids,
            status=data.status,
            audit=audit_context(),
        )
    return json_response({"items": [run_json(r) for r in rows]})


@bp.post("/runs:bulk-tags")
@user
@idempotent
@validate_request(BulkTagsIn)
async def bulk_tags(data: BulkTagsIn) -> Response:
    """Adds and removes tags on many runs, all-or-nothing like ``runs:batch-status``."""
    async with services().database.acquire() as conn:
        rows = await domain.change_runs_tags(
            conn,
            principal=principal(),
            run_ids=data.run_ids,
            add=data.add,
            remove=data.remove,
            audit=audit_context(),
        )
    return json_response({"items": [run_json(r) for r in rows]})


@bp.get("/runs/<uuid:run_id>/sensors")
@project("run.read")
async def list_run_sensors(run_id: UUID) -> Response:
    async with services().database.acquire() as conn:
        rows = await store.list_run_sensors(conn, run_id=run_id)
    return json_response({"items": [sensor_json(r) for r in rows], "next_cursor": None})


@bp.put("/runs/<uuid:run_id>/sensors")
@project("run.write")
@idempotent
@validate_request(SensorsIn)
async def set_run_sensors(run_id: UUID, data: SensorsIn) -> Response:
    """Replaces the sensors the run's capture sessions record (409 while one is running)."""
    async with services().database.acquire() as conn:
        rows = await capture_domain.set_run_sensors(
            conn,
            run_id=run_id,
            sensor_ids=data.sensor_ids,
            role=project_role(),
            audit=audit_context(),
        )
    return json_response({"items": [sensor_json(r) for r in rows], "next_cursor": None})


# Export ------------------------------------------------------------------------------------------


async def _run_records(
    db: Database, project: UUID, filters: ListFilters, sort: Sort
) -> AsyncGenerator[Any, None]:
    """First the sorted params keys (the CSV columns), then the runs, from one snapshot."""
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        yield await store.fetch_param_keys(conn, project_id=project, filters=filters)
        async for row in store.iterate_runs(conn, project_id=project, filters=filters, sort=sort):
            yield row


@bp.get("/projects/<uuid:project_id>/runs/export")
@project("run.read")
async def export_runs(project_id: UUID) -> Response:
    """Every matching run as CSV (params flattened to ``param.<key>`` columns) or JSON,
    streamed row by row; the same filters and sort as the run search."""
    fmt = export_format()
    filters = listing_filters(domain.RUN_STATUSES, with_experiment=True)
    records = _run_records(services().database, project_id, filters, _sort())
    param_keys: list[str] = await anext(records)

    def csv_row(row: Any) -> list[Any]:
        params = row["params"]
        base = [",".join(row[f]) if f == "tags" else row[f] for f in RUN_CSV_FIELDS]
        return base + [params.get(key) for key in param_keys]

    chunks = encode_export(
        records,
        fmt=fmt,
        header=[*RUN_CSV_FIELDS, *(f"param.{key}" for key in param_keys)],
        csv_row=csv_row,
        json_item=run_json,
    )
    return await export_response(chunks, fmt=fmt, filename=f"runs-{project_id}")
