"""Telemetry exports: a manifest, then the rows, streamed in constant memory.

Formats (decided in ADR 0007):
- ``csv``: one ``#``-prefixed line holding the JSON manifest, then a header row and the rows
  (``pandas.read_csv(..., comment="#")`` reads it);
- ``json``: JSON lines; the first line is ``{"manifest": {...}}``, then one object per point;
- ``parquet``: row groups as they are read; the manifest in the file's key-value metadata
  under ``etp.manifest`` (needs the optional ``pyarrow``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg

from core.errors import InvalidInput
from core.json import dumps
from core.stores import telemetry as store
from core.telemetry_read import Target

FORMATS = ("csv", "json", "parquet")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
BATCH_ROWS = 5_000
STREAM_MAX_ROWS = 1_000_000  # larger exports run as worker jobs


def check_format(value: str | None) -> str:
    value = value or "csv"
    if value not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}", details={"field": "format"}
        )
    if value == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InvalidInput(
                "parquet export is not available on this server (pyarrow is not installed)",
                details={"field": "format"},
            ) from None
    return value


def _scope(target: Target, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "sensor_ids": target.sensor_ids,
        "run_id": target.run_id,
        "capture_session_id": target.capture_session_id,
        "start": start,
        "end": end,
    }


async def count_rows(
    conn: asyncpg.Connection, target: Target, start: datetime, end: datetime
) -> int:
    return await store.count_points(conn, **_scope(target, start, end))


async def build_manifest(
    conn: asyncpg.Connection, target: Target, start: datetime, end: datetime, *, fmt: str
) -> dict[str, Any]:
    """Sensors with units and profile versions, the range and the exact row count."""
    profiles = await store.fetch_profiles(conn, sensor_ids=target.sensor_ids, start=start, end=end)
    by_sensor: dict[Any, list[dict[str, Any]]] = {}
    for p in profiles:
        by_sensor.setdefault(p["sensor_id"], []).append(
            {k: p[k] for k in ("version", "kind", "payload", "status", "valid_from", "valid_to")}
        )
    return {
        "kind": "telemetry",
        "format": fmt,
        "generated_at": datetime.now(UTC),
        "from": start,
        "to": end,
        "run_id": target.run_id,
        "capture_session_id": target.capture_session_id,
        "row_count": await count_rows(conn, target, start, end),
        "columns": list(store.EXPORT_COLUMNS),
        "sensors": [
            {
                "id": s.id,
                "name": s.name,
                "raw_unit": s.input_unit,
                "physical_unit": s.display_unit,
                "profiles": by_sensor.get(s.id, []),
            }
            for s in target.sensors
        ],
    }


async def export_rows(
    conn: asyncpg.Connection, target: Target, start: datetime, end: datetime
) -> AsyncIterator[list[asyncpg.Record]]:
    """Row batches through a server-side cursor (run inside a transaction)."""
    scope = _scope(target, start, end)
    cursor = conn.cursor(
        store.EXPORT_QUERY,
        scope["sensor_ids"],
        scope["run_id"],
        scope["capture_session_id"],
        start,
        end,
        prefetch=BATCH_ROWS,
    )
    batch: list[asyncpg.Record] = []
    async for row in cursor:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


async def encode_csv(
    manifest: dict[str, Any], batches: AsyncIterator[list[asyncpg.Record]]
) -> AsyncIterator[bytes]:
    yield b"# " + dumps(manifest) + b"\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(store.EXPORT_COLUMNS)
    yield buffer.getvalue().encode()
    async for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_cell(v) for v in row.values()] for row in batch)
        yield buffer.getvalue().encode()


async def encode_json_lines(
    manifest: dict[str, Any], batches: AsyncIterator[list[asyncpg.Record]]
) -> AsyncIterator[bytes]:
    yield dumps({"manifest": manifest}) + b"\n"
    async for batch in batches:
        yield b"".join(dumps(dict(row)) + b"\n" for row in batch)


class _Sink(io.RawIOBase):
    """A write-only file that hands out what was written since the last ``drain``."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.chunks.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


async def encode_parquet(
    manifest: dict[str, Any], batches: AsyncIterator[list[asyncpg.Record]]
) -> AsyncIterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("sensor_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("raw_value", pa.float64()),
            ("physical_value", pa.float64()),
            ("profile_version", pa.int32()),
            ("conversion_status", pa.string()),
            ("run_id", pa.string()),
            ("capture_session_id", pa.string()),
        ],
        metadata={"etp.manifest": dumps(manifest)},
    )
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema)
    async for batch in batches:
        columns = {name: [row[name] for row in batch] for name in store.EXPORT_COLUMNS}
        for name in ("sensor_id", "run_id", "capture_session_id"):
            columns[name] = [None if v is None else str(v) for v in columns[name]]
        writer.write_table(pa.table(columns, schema=schema))
        yield sink.drain()
    writer.close()
    yield sink.drain()


ENCODERS = {"csv": encode_csv, "json": encode_json_lines, "parquet": encode_parquet}
