"""Streamed export encoding: CSV cells, chunking and the JSON array (no database)."""

import csv
import io
from datetime import UTC, datetime

import orjson

from api import experiments as export
from api.experiments import csv_cell, encode_export


def test_csv_cells_defuse_formulas_but_keep_numbers():
    assert csv_cell("=SUM(A1)") == "'=SUM(A1)"
    assert csv_cell("@cmd") == "'@cmd"
    assert csv_cell("-0.5") == "-0.5"
    assert csv_cell("+1e3") == "+1e3"
    assert csv_cell("plain") == "plain"
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"
    assert csv_cell({"a": [1]}) == '{"a":[1]}'
    assert csv_cell(datetime(2025, 1, 2, tzinfo=UTC)) == "2025-01-02T00:00:00+00:00"
    assert csv_cell(3) == 3


async def _records(n):
    for i in range(n):
        yield {"id": i, "name": f"n,{i}"}


async def _collect(fmt, n):
    chunks = [
        chunk
        async for chunk in encode_export(
            _records(n),
            fmt=fmt,
            header=["id", "name"],
            csv_row=lambda r: [r["id"], r["name"]],
            json_item=lambda r: r,
        )
    ]
    return chunks, b"".join(chunks)


async def test_csv_is_chunked_and_quoted(monkeypatch):
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 10)
    chunks, body = await _collect("csv", 25)
    assert len(chunks) == 1 + 3  # the header, then 10 + 10 + 5 rows
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["id", "name"] and rows[-1] == ["24", "n,24"] and len(rows) == 26


async def test_json_is_one_array_whatever_the_count(monkeypatch):
    monkeypatch.setattr(export, "EXPORT_CHUNK_ROWS", 4)
    for n in (0, 1, 4, 9):
        _, body = await _collect("json", n)
        assert orjson.loads(body) == [{"id": i, "name": f"n,{i}"} for i in range(n)]
