"""A comparison rendered for people: CSV tables and a self-contained HTML report.

The HTML report has no external assets: styles are inline and the plots are inline SVG, so
it can be mailed or archived and opens offline. Every user-supplied text is escaped.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from core.json import dumps

PALETTE = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_METRIC_COLUMNS = ("last", "min", "max", "avg", "count", "last_step")
MAX_BAR_CHARTS = 50


# CSV --------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | dict | list):
        return dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def runs_csv(document: Mapping[str, Any]) -> str:
    """One row per run: params as ``param.<key>``, metrics as ``metric.<name>.<stat>`` with
    ``metric.<name>.delta_last`` against the baseline."""
    params = document["params"]
    metrics = document["metrics"]
    header = ["run_id", "run_name", "status", "experiment", "baseline"]
    header += [f"param.{p['key']}" for p in params]
    for m in metrics:
        header += [f"metric.{m['name']}.{c}" for c in (*_METRIC_COLUMNS, "delta_last")]
    rows: list[list[Any]] = [header]
    for run in document["runs"]:
        rid = str(run["id"])
        row = [rid, run["name"], run["status"], run["experiment_name"]]
        row.append(run["id"] == document["baseline_run_id"])
        row += [p["values"][rid] for p in params]
        for m in metrics:
            entry = m["runs"][rid]
            if entry is None:
                row += [None] * (len(_METRIC_COLUMNS) + 1)
            else:
                delta = entry["delta"]["last"] if entry["delta"] else None
                row += [entry[c] for c in _METRIC_COLUMNS] + [delta]
        rows.append(row)
    return _csv(rows)


def telemetry_csv(document: Mapping[str, Any]) -> str:
    """One row per overlay bucket (long form)."""
    names = {str(r["id"]): r["name"] for r in document["runs"]}
    rows: list[list[Any]] = [
        [
            "run_id", "run_name", "capture_session_id", "session_ordinal", "sensor_id",
            "sensor_name", "unit", "profile_versions", "offset_s", "count", "min", "max", "avg",
        ]
    ]  # fmt: skip
    for s in (document["telemetry"] or {}).get("series", []):
        versions = ",".join(str(v["version"]) for v in s["profile_versions"])
        head = [
            s["run_id"], names.get(str(s["run_id"])), s["capture_session_id"],
            s["session_ordinal"], s["sensor_id"], s["sensor_name"], s["unit"], versions,
        ]  # fmt: skip
        for b in s["buckets"]:
            rows.append([*head, b["offset_s"], b["count"], b["min"], b["max"], b["avg"]])
    return _csv(rows)


# HTML -------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict | list | bool):
        return dumps(value).decode()
    return str(value)


def _e(value: Any) -> str:
    return escape(_fmt(value), quote=True)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def line_chart(
    series: Sequence[tuple[str, str, Sequence[tuple[float, float, float, float]]]],
    *,
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 280,
) -> str:
    """Inline SVG: per series (label, colour, [(x, avg, min, max)]) a min–max band and the
    average line."""
    points = [p for _, _, pts in series for p in pts if all(map(math.isfinite, p))]
    if not points:
        return '<p class="empty">no data</p>'
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[2] for p in points), max(p[3] for p in points)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    left, right, top, bottom = 64, 12, 10, 40
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>',
    ]
    for t in _ticks(x0, x1):
        parts.append(
            f'<text x="{sx(t):.1f}" y="{height - 24}" font-size="10" text-anchor="middle">'
            f"{_e(t)}</text>"
        )
    for t in _ticks(y0, y1):
        parts.append(
            f'<text x="{left - 4}" y="{sy(t) + 3:.1f}" font-size="10" text-anchor="end">'
            f"{_e(t)}</text>"
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
            'stroke="#eee"/>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    for label, colour, pts in series:
        good = [p for p in pts if all(map(math.isfinite, p))]
        if not good:
            continue
        upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, _, hi in good)
        lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, _, lo, _ in reversed(good))
        line = " ".join(f"{sx(x):.1f},{sy(avg):.1f}" for x, avg, _, _ in good)
        parts.append(
            f"<g><title>{escape(label)}</title>"
            f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.15" stroke="none"/>'
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[tuple[str, float | None, bool]], *, width: int = 760) -> str:
    """Inline SVG: one horizontal bar per (label, value, is baseline), zero marked."""
    values = [v for _, v, _ in bars if v is not None and math.isfinite(v)]
    if not values:
        return '<p class="empty">no data</p>'
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1
    row, label_w, value_w = 16, 220, 80
    pw = width - label_w - value_w
    height = row * len(bars) + 8

    def sx(x: float) -> float:
        return label_w + (x - lo) / (hi - lo) * pw

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for i, (label, value, is_baseline) in enumerate(bars):
        y = 4 + i * row
        short = label if len(label) <= 32 else label[:31] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 11}" font-size="11" text-anchor="end">'
            f"{escape(short)}</text>"
        )
        if value is not None and math.isfinite(value):
            a, b = sorted((sx(0.0), sx(value)))
            colour = "#d62728" if is_baseline else "#1f77b4"
            parts.append(
                f'<rect x="{a:.1f}" y="{y + 2}" width="{max(b - a, 1):.1f}" height="{row - 4}" '
                f'fill="{colour}"/>'
            )
        parts.append(f'<text x="{label_w + pw + 4}" y="{y + 11}" font-size="11">{_e(value)}</text>')
    parts.append(
        f'<line x1="{sx(0.0):.1f}" x2="{sx(0.0):.1f}" y1="0" y2="{height}" stroke="#555"/></svg>'
    )
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
tr.differs td{background:#fff6dd}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
.empty,.note{color:#777;font-size:12px}
"""


def _table(header: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(f'<tr class="{cls}">' + "".join(cells) + "</tr>" for cls, cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(document: Mapping[str, Any]) -> str:
    """The whole comparison as one HTML page with inline SVG plots."""
    runs = document["runs"]
    names = {str(r["id"]): r["name"] for r in runs}
    baseline = str(document["baseline_run_id"])
    colours = {str(r["id"]): PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Run comparison {_e(document['id'])}</title><style>{_STYLE}</style></head><body>",
        f'<h1>Run comparison</h1><p class="note">Comparison {_e(document["id"])}, '
        f"computed {_e(document['computed_at'])}; baseline: {escape(names.get(baseline, ''))}</p>",
        "<h2>Runs</h2>",
        _table(
            ["", "run", "experiment", "status", "started", "duration (s)", "tags"],
            (
                (
                    "",
                    [
                        f'<td><span class="swatch" style="background:{colours[str(r["id"])]}">'
                        "</span></td>",
                        f"<td>{_e(r['name'])}{' (baseline)' if str(r['id']) == baseline else ''}"
                        "</td>",
                        f"<td>{_e(r['experiment_name'])}</td><td>{_e(r['status'])}</td>",
                        f"<td>{_e(r['started_at'])}</td>",
                        f'<td class="num">{_e(r["duration_seconds"])}</td>',
                        f"<td>{_e(', '.join(r['tags']))}</td>",
                    ],
                )
                for r in runs
            ),
        ),
        '<h2>Parameters</h2><p class="note">Highlighted rows differ between runs.</p>',
        _table(
            ["param", *(names[str(r["id"])] for r in runs)],
            (
                (
                    "differs" if p["differs"] else "",
                    [f"<td>{_e(p['key'])}</td>"]
                    + [f"<td>{_e(p['values'][str(r['id'])])}</td>" for r in runs],
                )
                for p in document["params"]
            ),
        ),
        "<h2>Metrics</h2>",
    ]
    for i, metric in enumerate(document["metrics"]):
        rows = []
        bars: list[tuple[str, float | None, bool]] = []
        for r in runs:
            rid = str(r["id"])
            entry = metric["runs"][rid]
            bars.append((names[rid], entry["last"] if entry else None, rid == baseline))
            cells = [f"<td>{_e(names[rid])}</td>"]
            if entry is None:
                cells += ['<td class="num">–</td>'] * 7
            else:
                delta = entry["delta"]["last"] if entry["delta"] else None
                cells += [f'<td class="num">{_e(entry[c])}</td>' for c in _METRIC_COLUMNS]
                cells.append(f'<td class="num">{_e(delta)}</td>')
            rows.append(("", cells))
        out.append(f"<h3>{_e(metric['name'])}</h3>")
        out.append(_table(["run", *_METRIC_COLUMNS, "Δ last vs baseline"], rows))
        if i < MAX_BAR_CHARTS:
            out.append(bar_chart(bars))
    out.append(_telemetry_section(document.get("telemetry"), names, colours))
    out.append("</body></html>")
    return "".join(out)


def _telemetry_section(
    telemetry: Mapping[str, Any] | None, names: Mapping[str, str], colours: Mapping[str, str]
) -> str:
    if not telemetry or not telemetry["series"]:
        return '<h2>Telemetry</h2><p class="empty">No capture-session telemetry.</p>'
    out = [
        "<h2>Telemetry (capture sessions, aligned on time since each session started)</h2>",
        f'<p class="note">Bucket width {_e(telemetry["bucket_ms"])} ms; line: average, '
        "band: min–max per bucket; physical values.</p>",
    ]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for s in telemetry["series"]:
        groups.setdefault(str(s["sensor_id"]), []).append(s)
    for series in groups.values():
        first = series[0]
        lines = []
        legend = []
        for s in series:
            rid = str(s["run_id"])
            versions = ", ".join(f"v{v['version']}" for v in s["profile_versions"]) or "none"
            label = f"{names.get(rid, rid)} · session #{s['session_ordinal']} · profile {versions}"
            colour = colours.get(rid, PALETTE[0])
            pts = [
                (b["offset_s"], b["avg"], b["min"], b["max"])
                for b in s["buckets"]
                if None not in (b["avg"], b["min"], b["max"])
            ]
            lines.append((label, colour, pts))
            legend.append(
                f'<span><span class="swatch" style="background:{colour}"></span>'
                f"{escape(label)}</span>"
            )
        unit = f" ({first['unit']})" if first["unit"] else ""
        out.append(f"<h3>{_e(first['sensor_name'])}{escape(unit)}</h3>")
        out.append(line_chart(lines, x_label="seconds since session start", y_label=unit))
        out.append(f'<div class="legend">{"".join(legend)}</div>')
    if telemetry.get("truncated"):
        out.append(
            f'<p class="note">Showing the first sessions of {_e(telemetry["sessions_total"])}.</p>'
        )
    return "".join(out)
