"""Run comparison: params side by side, metric summaries with deltas against a baseline run,
and capture-session telemetry overlaid on session-relative time.

A comparison stores its definition (runs, baseline, options) and is assembled from current
data whenever it is read, so a shared link shows the runs as they are now. Every read checks
that the caller can read every run in it: one unreadable or missing run answers 404, exactly
like a comparison that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from core.authz import role_allows
from core.errors import InvalidInput, NotFound
from core.metrics import clean_metric_name
from core.principal import Principal
from core.stores import comparisons as store
from core.stores import metrics as metrics_store
from core.stores import telemetry as telemetry_store
from core.telemetry_read import SensorInfo, Target, aggregate, choose_bucket_ms

MAX_RUNS = 100
DEFAULT_MAX_POINTS = 500
MAX_POINTS = 5_000
MAX_SESSIONS = 20
MAX_METRIC_NAMES = 1_000
READ_ACTIONS = ("run.read", "metrics.read", "telemetry.read")
LIMITS: dict[str, Any] = {
    "runs_per_comparison": MAX_RUNS,
    "max_points_limit": MAX_POINTS,
    "max_points_default": DEFAULT_MAX_POINTS,
    "capture_sessions_overlaid": MAX_SESSIONS,
    "metric_names": MAX_METRIC_NAMES,
}
_RUN_FIELDS = (
    "id", "name", "status", "project_id", "experiment_id", "experiment_name", "tags",
    "started_at", "finished_at", "duration_seconds",
)  # fmt: skip
_STATS = ("last", "min", "max", "avg")
_MISSING = object()


def clean_options(
    *,
    run_ids: Sequence[UUID],
    baseline_run_id: UUID | None,
    max_points: int,
    metric_names: Sequence[str] | None,
    capture_session_ids: Sequence[UUID] | None,
    telemetry: bool,
) -> tuple[list[UUID], UUID, dict[str, Any]]:
    """(distinct run ids in order, baseline, stored options); 422 naming the field."""
    ids = list(dict.fromkeys(run_ids))
    if not 1 <= len(ids) <= MAX_RUNS:
        raise InvalidInput(f"compare 1 to {MAX_RUNS} runs", details={"field": "run_ids"})
    baseline = ids[0] if baseline_run_id is None else baseline_run_id
    if baseline not in ids:
        raise InvalidInput(
            "baseline_run_id must be one of run_ids", details={"field": "baseline_run_id"}
        )
    if not 1 <= max_points <= MAX_POINTS:
        raise InvalidInput(
            f"max_points must be from 1 to {MAX_POINTS}", details={"field": "max_points"}
        )
    options: dict[str, Any] = {"max_points": max_points, "telemetry": telemetry}
    if metric_names is not None:
        if len(metric_names) > MAX_METRIC_NAMES:
            raise InvalidInput(
                f"at most {MAX_METRIC_NAMES} metric names", details={"field": "metric_names"}
            )
        options["metric_names"] = [clean_metric_name(n) for n in dict.fromkeys(metric_names)]
    if capture_session_ids is not None:
        if len(capture_session_ids) > MAX_SESSIONS:
            raise InvalidInput(
                f"at most {MAX_SESSIONS} capture sessions",
                details={"field": "capture_session_ids"},
            )
        options["capture_session_ids"] = [str(s) for s in dict.fromkeys(capture_session_ids)]
    return ids, baseline, options


async def _readable_runs(
    conn: asyncpg.Connection, caller: Principal, run_ids: Sequence[UUID], what: str
) -> list[Any]:
    """The runs in request order, or 404 naming nothing if any is missing or unreadable."""
    rows = {
        r["id"]: r
        for r in await store.fetch_runs_with_role(conn, run_ids=run_ids, user_id=caller.user_id)
    }
    for run_id in run_ids:
        row = rows.get(run_id)
        if row is None or not all(role_allows(row["role"], a) for a in READ_ACTIONS):
            raise NotFound(what)
    return [rows[run_id] for run_id in run_ids]


async def create_comparison(
    conn: asyncpg.Connection,
    *,
    caller: Principal,
    run_ids: Sequence[UUID],
    baseline_run_id: UUID,
    options: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Stores the comparison after checking every run is readable; returns it assembled."""
    runs = await _readable_runs(conn, caller, run_ids, "a run is not found, or not readable by you")
    if not all(role_allows(r["role"], "comparison.create") for r in runs):
        raise NotFound("a run is not found, or not readable by you")
    await _check_sessions(conn, run_ids, options)
    row = await store.insert_comparison(
        conn,
        created_by=caller.user_id,
        run_ids=run_ids,
        baseline_run_id=baseline_run_id,
        options=options,
    )
    return await assemble(conn, row, runs, now=now)


async def get_comparison(
    conn: asyncpg.Connection,
    *,
    caller: Principal,
    comparison_id: UUID,
    now: datetime | None = None,
) -> dict[str, Any]:
    row = await store.fetch_comparison(conn, comparison_id=comparison_id)
    if row is None:
        raise NotFound("comparison not found")
    runs = await _readable_runs(conn, caller, row["run_ids"], "comparison not found")
    return await assemble(conn, row, runs, now=now)


async def _check_sessions(
    conn: asyncpg.Connection, run_ids: Sequence[UUID], options: Mapping[str, Any]
) -> None:
    chosen = options.get("capture_session_ids")
    if not chosen:
        return
    started = {str(s["id"]) for s in await store.fetch_started_sessions(conn, run_ids=run_ids)}
    if any(s not in started for s in chosen):
        raise InvalidInput(
            "capture_session_ids must name started capture sessions of the compared runs",
            details={"field": "capture_session_ids"},
        )


async def assemble(
    conn: asyncpg.Connection, row: Mapping[str, Any], runs: Sequence[Any], *, now: datetime | None
) -> dict[str, Any]:
    """The comparison document (also what the exports render)."""
    now = now or datetime.now(UTC)
    run_ids = [r["id"] for r in runs]
    options = dict(row["options"])
    baseline = row["baseline_run_id"] or run_ids[0]
    summaries = await metrics_store.fetch_summaries(
        conn, run_ids=run_ids, names=options.get("metric_names")
    )
    document: dict[str, Any] = {
        "id": row["id"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "computed_at": now,
        "run_ids": run_ids,
        "baseline_run_id": baseline,
        "options": options,
        "runs": [{f: r[f] for f in _RUN_FIELDS} for r in runs],
        "params": compare_params([(r["id"], r["params"]) for r in runs]),
        "metrics": compare_metrics(run_ids, baseline, summaries),
        "telemetry": None,
    }
    if options.get("telemetry", True):
        document["telemetry"] = await overlay_telemetry(
            conn, runs, options=options, max_points=int(options["max_points"]), now=now
        )
    return document


# Params and metrics ----------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """Equality that tells 1 from true and "1", but not 1 from 1.0."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def compare_params(params_by_run: Sequence[tuple[UUID, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Every param key, its value per run (null where a run lacks it) and whether they
    differ (a missing key differs from any value)."""
    keys = sorted({key for _, params in params_by_run for key in params})
    result = []
    for key in keys:
        raw = [params.get(key, _MISSING) for _, params in params_by_run]
        canon = {("missing",) if v is _MISSING else _canonical(v) for v in raw}
        result.append(
            {
                "key": key,
                "values": {
                    str(run_id): None if v is _MISSING else v
                    for (run_id, _), v in zip(params_by_run, raw, strict=True)
                },
                "differs": len(canon) > 1,
            }
        )
    return result


def compare_metrics(
    run_ids: Sequence[UUID], baseline: UUID, summaries: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Per metric name, each run's summary with deltas against the baseline's."""
    by_name: dict[str, dict[UUID, Mapping[str, Any]]] = {}
    for summary in summaries:
        by_name.setdefault(summary["name"], {})[summary["run_id"]] = summary
    result = []
    for name in sorted(by_name):
        per_run = by_name[name]
        base = per_run.get(baseline)
        runs: dict[str, Any] = {}
        for run_id in run_ids:
            s = per_run.get(run_id)
            if s is None:
                runs[str(run_id)] = None
                continue
            values = {"last": s["last_value"], "min": s["min"], "max": s["max"], "avg": s["avg"]}
            entry: dict[str, Any] = {
                **values,
                "count": s["count"],
                "last_step": s["last_step"],
                "delta": None,
                "delta_pct_last": None,
            }
            if base is not None:
                base_values = {
                    "last": base["last_value"], "min": base["min"],
                    "max": base["max"], "avg": base["avg"],
                }  # fmt: skip
                entry["delta"] = {k: values[k] - base_values[k] for k in _STATS}
                if base_values["last"] != 0:
                    entry["delta_pct_last"] = (
                        100.0 * (values["last"] - base_values["last"]) / abs(base_values["last"])
                    )
            runs[str(run_id)] = entry
        result.append({"name": name, "baseline_present": base is not None, "runs": runs})
    return result


# Telemetry overlays ------------------------------------------------------------------------------


async def overlay_telemetry(
    conn: asyncpg.Connection,
    runs: Sequence[Any],
    *,
    options: Mapping[str, Any],
    max_points: int,
    now: datetime,
) -> dict[str, Any]:
    """Physical values of every sensor in the runs' capture sessions, bucketed on time since
    each session's start with one bucket width for all (so the series line up)."""
    run_order = {r["id"]: i for i, r in enumerate(runs)}
    sessions = sorted(
        await store.fetch_started_sessions(conn, run_ids=list(run_order)),
        key=lambda s: (run_order[s["run_id"]], s["ordinal"]),
    )
    chosen = options.get("capture_session_ids")
    if chosen:
        sessions = [s for s in sessions if str(s["id"]) in set(chosen)]
    total = len(sessions)
    sessions = sessions[:MAX_SESSIONS]
    result: dict[str, Any] = {
        "value": "physical",
        "max_points": max_points,
        "bucket_ms": None,
        "duration_s": 0.0,
        "sessions_total": total,
        "truncated": total > len(sessions),
        "series": [],
    }
    if not sessions:
        return result
    ends = {s["id"]: s["stopped_at"] or now for s in sessions}
    duration = max(max(ends[s["id"]] - s["started_at"] for s in sessions), timedelta(seconds=1))
    result["duration_s"] = duration.total_seconds()
    result["bucket_ms"] = choose_bucket_ms(duration / timedelta(milliseconds=1), max_points)
    sensors: dict[UUID, list[Any]] = {}
    for row in await store.fetch_session_sensors(conn, session_ids=[s["id"] for s in sessions]):
        sensors.setdefault(row["capture_session_id"], []).append(row)
    all_sensors = sorted({row["id"] for rows in sensors.values() for row in rows})
    profiles = await telemetry_store.fetch_profiles(
        conn,
        sensor_ids=all_sensors,
        start=min(s["started_at"] for s in sessions),
        end=max(ends.values()),
    )
    timescale = await telemetry_store.has_timescaledb(conn)
    for session in sessions:
        rows = sensors.get(session["id"], [])
        if not rows:
            continue
        start = session["started_at"]
        target = Target(
            sensors=tuple(
                SensorInfo(
                    r["id"], r["name"], r["input_unit"], r["display_unit"], session["project_id"]
                )
                for r in rows
            ),
            capture_session_id=session["id"],
            project_id=session["project_id"],
            started_at=start,
            stopped_at=session["stopped_at"],
            session_ids=(session["id"],),
        )
        aggregated = await aggregate(
            conn,
            target=target,
            start=start,
            end=start + duration,
            max_points=max_points,
            physical=True,
            relative=True,
            timescale=timescale,
        )
        info = {r["id"]: r for r in rows}
        for series in aggregated["series"]:
            sensor = info[series["sensor_id"]]
            result["series"].append(
                {
                    "run_id": session["run_id"],
                    "capture_session_id": session["id"],
                    "session_ordinal": session["ordinal"],
                    "session_status": session["status"],
                    "sensor_id": sensor["id"],
                    "sensor_name": sensor["name"],
                    "unit": sensor["display_unit"] or sensor["input_unit"],
                    "source": aggregated["source"],
                    "profile_versions": profile_versions(
                        profiles, sensor["id"], start, ends[session["id"]]
                    ),
                    "buckets": [
                        {k: b[k] for k in ("offset_s", "count", "min", "max", "avg")}
                        for b in series["buckets"]
                    ],
                }
            )
    return result


def profile_versions(
    profiles: Sequence[Mapping[str, Any]], sensor_id: UUID, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The conversion profiles that applied during [start, end), as session-relative spans."""
    spans = []
    for p in profiles:
        if p["sensor_id"] != sensor_id:
            continue
        lo = max(p["valid_from"] or start, start)
        hi = min(p["valid_to"] or end, end)
        if hi > lo:
            spans.append(
                {
                    "version": p["version"],
                    "status": p["status"],
                    "from_offset_s": (lo - start).total_seconds(),
                    "to_offset_s": (hi - start).total_seconds(),
                }
            )
    return sorted(spans, key=lambda s: (s["from_offset_s"], s["version"]))
