"""Run metrics (what training scripts log, like MLflow's ``log_metric``): batch validation,
append, per-name summaries, and series downsampled by step buckets that keep the true
minimum and maximum of every bucket (like W&B's sampling), or paged in full.

A point is ``(name, step, value, ts)``. Names are 1–250 characters of letters, digits and
``_ . / -`` or space; values are finite numbers; steps whole numbers (default 0); ``ts`` an
ISO-8601 time with an offset or epoch milliseconds (default: when the batch arrived).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from core.stores import metrics as store

NAME_MAX = 250
NAME_PATTERN = re.compile(r"[A-Za-z0-9_./ -]{1,250}")
BATCH_MAX = 10_000
BODY_MAX_BYTES = 8 * 1024 * 1024
# Steps stay within ±2^62 so step differences never overflow a bigint.
STEP_MIN = -(2**62) + 1
STEP_MAX = 2**62 - 1
MAX_POINTS_LIMIT = 10_000
SERIES_PER_READ = 100
PAGE_DEFAULT = 1_000
PAGE_MAX = 10_000
LIVE_MAX_POINTS = 1_000
_ERRORS_REPORTED = 20
_FIELDS = frozenset({"name", "value", "step", "ts"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

LIMITS: dict[str, Any] = {
    "metrics_per_request": BATCH_MAX,
    "request_max_bytes": BODY_MAX_BYTES,
    "name_max_chars": NAME_MAX,
    "name_pattern": NAME_PATTERN.pattern,
    "step_min": STEP_MIN,
    "step_max": STEP_MAX,
    "max_points_limit": MAX_POINTS_LIMIT,
    "series_per_read": SERIES_PER_READ,
    "page_max": PAGE_MAX,
}


@dataclass(frozen=True, slots=True)
class MetricPoint:
    name: str
    step: int
    value: float
    ts: datetime


# Validation -------------------------------------------------------------------------------------


def check_body_size(size: int | None) -> None:
    if size is not None and size > BODY_MAX_BYTES:
        raise PayloadTooLarge(
            f"a metrics request is at most {BODY_MAX_BYTES} bytes",
            details={"limit_bytes": BODY_MAX_BYTES, "size_bytes": size},
        )


def clean_metric_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"a metric name is 1 to {NAME_MAX} characters of letters, digits, "
            "'_', '.', '/', '-' and space",
            details={"field": "name"},
        )
    return value


def _parse_ts(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return EPOCH + timedelta(milliseconds=value)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise ValueError("ts must be an ISO-8601 time with an offset, or epoch milliseconds")


def _parse_point(item: Any, now: datetime) -> MetricPoint:
    if not isinstance(item, dict):
        raise ValueError("each metric is an object {name, value, step?, ts?}")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"name must be 1 to {NAME_MAX} characters of letters, digits, '_', '.', '/', '-' "
            "and space"
        )
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("value must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("value must be finite")
    step = item.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not STEP_MIN <= step <= STEP_MAX:
        raise ValueError(f"step must be a whole number from {STEP_MIN} to {STEP_MAX}")
    return MetricPoint(name, step, value, _parse_ts(item.get("ts"), now))


def parse_metric_batch(body: bytes, *, now: datetime) -> list[MetricPoint]:
    """The points of a ``{"metrics": [...]}`` body; 413/422 naming the limit or the entries."""
    check_body_size(len(body))
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            "the body is not valid JSON (NaN and Infinity are not allowed)"
        ) from None
    if not isinstance(document, dict) or set(document) != {"metrics"}:
        raise InvalidInput('the body must be {"metrics": [...]}', details={"field": "metrics"})
    items = document["metrics"]
    if not isinstance(items, list) or not items:
        raise InvalidInput(
            f"metrics must be a list of 1 to {BATCH_MAX} entries", details={"field": "metrics"}
        )
    if len(items) > BATCH_MAX:
        raise PayloadTooLarge(
            f"at most {BATCH_MAX} metrics per request; split the batch",
            details={"limit": BATCH_MAX, "count": len(items)},
        )
    points: list[MetricPoint] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            points.append(_parse_point(item, now))
        except ValueError as exc:
            errors.append({"index": index, "message": str(exc)})
    if errors:
        first = errors[0]
        raise InvalidInput(
            f"metrics[{first['index']}]: {first['message']} ({len(errors)} invalid entries; "
            "nothing was stored)",
            details={"errors": errors[:_ERRORS_REPORTED], "invalid": len(errors)},
        )
    return points


# Summaries of a batch --------------------------------------------------------------------------


def summarise_batch(points: Sequence[MetricPoint]) -> list[tuple[Any, ...]]:
    """Per name, sorted: (name, count, sum, min, max, first step, last step, last value,
    last ts). The last point is the one with the highest (step, ts), later entries winning."""
    acc: dict[str, list[Any]] = {}
    for p in points:
        s = acc.get(p.name)
        if s is None:
            acc[p.name] = [1, p.value, p.value, p.value, p.step, p.step, p.value, p.ts]
            continue
        s[0] += 1
        s[1] += p.value
        s[2] = min(s[2], p.value)
        s[3] = max(s[3], p.value)
        s[4] = min(s[4], p.step)
        if (p.step, p.ts) >= (s[5], s[7]):
            s[5], s[6], s[7] = p.step, p.value, p.ts
    return [(name, *acc[name]) for name in sorted(acc)]


async def append_metrics(
    conn: asyncpg.Connection, *, run_id: UUID, points: Sequence[MetricPoint]
) -> int:
    """Appends the points (binary COPY) and merges the summaries, in one transaction."""
    async with conn.transaction():
        run = await store.lock_run_for_append(conn, run_id=run_id)
        if run is None:
            raise NotFound("run not found")
        if run["status"] == "archived":
            raise Conflict(
                "the run is archived; it takes no new metrics",
                details={"current_status": "archived"},
            )
        await store.copy_points(
            conn, records=[(run_id, p.name, p.step, p.value, p.ts) for p in points]
        )
        await store.upsert_summaries(conn, run_id=run_id, summaries=summarise_batch(points))
    return len(points)


def live_message(run_id: UUID, points: Sequence[MetricPoint]) -> bytes:
    """What live views receive after a commit: the points, or (for big batches) the last
    point per name with ``truncated`` so the client re-reads the series."""
    if len(points) <= LIVE_MAX_POINTS:
        shown: Sequence[MetricPoint] = points
    else:
        last: dict[str, MetricPoint] = {}
        for p in points:
            if p.name not in last or (p.step, p.ts) >= (last[p.name].step, last[p.name].ts):
                last[p.name] = p
        shown = list(last.values())
    return orjson.dumps(
        {
            "run_id": str(run_id),
            "count": len(points),
            "truncated": len(shown) < len(points),
            "points": [[p.name, p.step, p.value, p.ts.isoformat()] for p in shown],
        }
    )


# Reads ------------------------------------------------------------------------------------------


def summary_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "count": row["count"],
        "last": row["last_value"],
        "min": row["min"],
        "max": row["max"],
        "avg": row["avg"],
        "first_step": row["first_step"],
        "last_step": row["last_step"],
        "last_ts": row["last_ts"],
    }


@dataclass(frozen=True, slots=True)
class StepPlan:
    lo: int
    hi: int
    width: int  # steps per bucket


def plan_step_buckets(
    first_step: int,
    last_step: int,
    max_points: int,
    *,
    step_from: int | None = None,
    step_to: int | None = None,
) -> StepPlan | None:
    """Buckets of equal width (in steps) covering the series' steps within the requested
    range, at most ``max_points`` of them; ``None`` when the range holds no step."""
    lo = first_step if step_from is None else max(first_step, step_from)
    hi = last_step if step_to is None else min(last_step, step_to)
    if hi < lo:
        return None
    width = max(1, -(-(hi - lo + 1) // max_points))
    return StepPlan(lo, hi, width)


def parse_names(raw: str | None) -> list[str] | None:
    """``name=a,b`` (names contain no commas); ``None`` when absent."""
    if raw is None or raw == "":
        return None
    names = list(dict.fromkeys(part for part in raw.split(",") if part))
    for name in names:
        clean_metric_name(name)
    if len(names) > SERIES_PER_READ:
        raise InvalidInput(f"at most {SERIES_PER_READ} names per read", details={"field": "name"})
    return names


async def downsample(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    names: Sequence[str] | None,
    max_points: int,
    step_from: int | None = None,
    step_to: int | None = None,
) -> dict[str, Any]:
    """At most ``max_points`` buckets per series, each with its count, exact min and max,
    avg, first and last value and the steps it spans."""
    if not 1 <= max_points <= MAX_POINTS_LIMIT:
        raise InvalidInput(
            f"max_points must be from 1 to {MAX_POINTS_LIMIT}", details={"field": "max_points"}
        )
    summaries = await store.fetch_summaries(
        conn, run_ids=[run_id], names=names, limit=SERIES_PER_READ + 1
    )
    truncated = len(summaries) > SERIES_PER_READ
    plans: dict[str, StepPlan | None] = {
        row["name"]: plan_step_buckets(
            row["first_step"], row["last_step"], max_points, step_from=step_from, step_to=step_to
        )
        for row in summaries[:SERIES_PER_READ]
    }
    rows = await store.aggregate_step_buckets(
        conn,
        run_id=run_id,
        plans=[(n, p.lo, p.hi, p.width) for n, p in plans.items() if p is not None],
    )
    buckets: dict[str, list[dict[str, Any]]] = {name: [] for name in plans}
    for row in rows:
        buckets[row["name"]].append(
            {
                "step": row["lo"] + row["bucket"] * row["width"],
                "first_step": row["first_step"],
                "last_step": row["last_step"],
                "count": row["count"],
                "min": row["min"],
                "max": row["max"],
                "avg": row["avg"],
                "first": row["first"],
                "last": row["last"],
            }
        )
    return {
        "run_id": run_id,
        "max_points": max_points,
        "truncated": truncated,
        "series": [
            {
                "name": name,
                "bucket_steps": plan.width if plan else None,
                "step_from": plan.lo if plan else None,
                "step_to": plan.hi if plan else None,
                "buckets": buckets[name],
            }
            for name, plan in plans.items()
        ],
    }


def point_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "step": row["step"], "value": row["value"], "ts": row["ts"]}


def parse_after(values: Sequence[Any] | None) -> tuple[str, int, int] | None:
    """The keyset of a history cursor ``[name, step, seq]``."""
    if values is None:
        return None
    name, step, seq = values
    if not isinstance(name, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in (step, seq)
    ):
        raise InvalidInput(
            "cursor is not valid; use next_cursor from a previous page", details={"field": "cursor"}
        )
    return name, step, seq
