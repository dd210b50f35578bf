"""Run comparisons: ``POST /comparisons``, ``GET /comparisons/{id}`` and its export as CSV, JSON or
a self-contained HTML report. The routes are ``@user``: ``core.comparisons`` checks that the
caller can read every run (404 otherwise, like a missing comparison)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request
from quart_schema import validate_request

from api.context import principal
from api.idempotency import idempotent
from api.policy import user
from api.responses import json_response
from api.state import services
from core import comparison_report as report
from core import comparisons as domain
from core.errors import InvalidInput
from core.json import dumps

bp = Blueprint("comparisons", __name__)
EXPORT_FORMATS = ("csv", "json", "html")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}


class ComparisonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_ids: list[UUID] = Field(min_length=1, max_length=domain.MAX_RUNS)
    baseline_run_id: UUID | None = Field(default=None, description="default: the first run")
    max_points: int = Field(
        default=domain.DEFAULT_MAX_POINTS,
        ge=1,
        le=domain.MAX_POINTS,
        description="buckets per telemetry overlay series",
    )
    metric_names: list[str] | None = Field(default=None, max_length=domain.MAX_METRIC_NAMES)
    capture_session_ids: list[UUID] | None = Field(default=None, max_length=domain.MAX_SESSIONS)
    telemetry: bool = True


@bp.post("/comparisons")
@user
@idempotent
@validate_request(ComparisonIn)
async def create_comparison(data: ComparisonIn) -> Response:
    """Stores a comparison of up to 100 runs the caller can read (404 if any is not) and
    answers it assembled: params side by side, metric deltas against the baseline, telemetry
    overlays."""
    run_ids, baseline, options = domain.clean_options(
        run_ids=data.run_ids,
        baseline_run_id=data.baseline_run_id,
        max_points=data.max_points,
        metric_names=data.metric_names,
        capture_session_ids=data.capture_session_ids,
        telemetry=data.telemetry,
    )
    async with services().database.transaction() as conn:
        document = await domain.create_comparison(
            conn, caller=principal(), run_ids=run_ids, baseline_run_id=baseline, options=options
        )
    return json_response(document, status=201)


@bp.get("/comparisons/<uuid:comparison_id>")
@user
async def get_comparison(comparison_id: UUID) -> Response:
    """The comparison assembled from current data; 404 unless the caller can read every run."""
    async with services().database.acquire() as conn:
        document = await domain.get_comparison(
            conn, caller=principal(), comparison_id=comparison_id
        )
    return json_response(document)


@bp.get("/comparisons/<uuid:comparison_id>/export")
@user
async def export_comparison(comparison_id: UUID) -> Response:
    """``format=csv`` (one row per run; ``part=telemetry`` for the overlay buckets), ``json``
    or ``html`` (a self-contained report with inline SVG plots), as an attachment."""
    fmt = request.args.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(EXPORT_FORMATS)}",
            details={"field": "format", "allowed": list(EXPORT_FORMATS)},
        )
    part = request.args.get("part", "runs")
    if part not in ("runs", "telemetry"):
        raise InvalidInput("part must be runs or telemetry", details={"field": "part"})
    async with services().database.acquire() as conn:
        document = await domain.get_comparison(
            conn, caller=principal(), comparison_id=comparison_id
        )
    if fmt == "json":
        body: bytes = dumps(document)
    elif fmt == "html":
        body = report.html_report(document).encode()
    else:
        rendered = (
            report.telemetry_csv(document) if part == "telemetry" else report.runs_csv(document)
        )
        body = rendered.encode()
    suffix = "-telemetry" if fmt == "csv" and part == "telemetry" else ""
    response = Response(body, content_type=CONTENT_TYPES[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="comparison-{comparison_id}{suffix}.{fmt}"'
    )
    response.headers["Cache-Control"] = "no-store"
    # The report carries its own styles and SVG; nothing else may load or run.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    )
    return response
