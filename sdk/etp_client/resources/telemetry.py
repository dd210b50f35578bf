"""Telemetry: ingest with a sensor token, history pages, downsampled aggregates."""

from __future__ import annotations

import gzip as gzip_lib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from etp_client.points import JSON_TYPE, LINE_PROTOCOL_TYPE, encode_points
from etp_client.resources.base import ApiBase, qid
from etp_client.transport import decode_json
from etp_client.types import IngestResult


def telemetry_filters(
    *,
    sensor_ids: Iterable[Any] | None = None,
    run_id: Any = None,
    capture_session_id: Any = None,
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
) -> dict[str, Any]:
    return {
        "sensor_ids": [qid(s) for s in sensor_ids] if sensor_ids is not None else None,
        "run_id": qid(run_id) if run_id is not None else None,
        "capture_session_id": qid(capture_session_id) if capture_session_id is not None else None,
        "from": from_,
        "to": to,
    }


class TelemetryApi(ApiBase):
    def send_telemetry(
        self,
        sensor_token: str,
        points: Sequence[Mapping[str, Any]] | None = None,
        *,
        lines: Sequence[str] | str | None = None,
        precision: str | None = None,
        compress: bool = False,
    ) -> IngestResult:
        """``POST /telemetry`` as a sensor: JSON ``points`` or InfluxDB line protocol
        ``lines``. Answers after the commit; bad points come back in ``rejected``."""
        if (points is None) == (lines is None):
            raise ValueError("pass either points or lines")
        if points is not None:
            body, content_type = encode_points(points), JSON_TYPE
        else:
            text = lines if isinstance(lines, str) else "\n".join(lines or ())
            body, content_type = text.encode(), LINE_PROTOCOL_TYPE
        headers = {"Authorization": f"Bearer {sensor_token}", "Content-Type": content_type}
        if compress:
            body = gzip_lib.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        response = self._http.request(
            "POST",
            "/telemetry",
            content=body,
            headers=headers,
            params={"precision": precision},
        )
        result: IngestResult = decode_json(response)
        return result

    def iter_telemetry(
        self,
        *,
        sensor_ids: Iterable[Any] | None = None,
        run_id: Any = None,
        capture_session_id: Any = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        value: str = "raw",
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stored points in (timestamp, sensor) order, page after page; ``value`` is ``raw``
        or ``physical``."""
        params = telemetry_filters(
            sensor_ids=sensor_ids,
            run_id=run_id,
            capture_session_id=capture_session_id,
            from_=from_,
            to=to,
        )
        return self.iter_pages("/telemetry", {**params, "value": value}, limit=limit)

    def telemetry_history(self, **filters: Any) -> list[dict[str, Any]]:
        """``iter_telemetry`` as a list."""
        return list(self.iter_telemetry(**filters))

    def telemetry_aggregate(
        self,
        *,
        sensor_ids: Iterable[Any],
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        max_points: int = 1000,
        **extra: Any,
    ) -> dict[str, Any]:
        """Downsampled buckets (min/max/avg/first/last/count) — spikes are kept."""
        params = {
            **telemetry_filters(sensor_ids=sensor_ids, from_=from_, to=to),
            "max_points": max_points,
            **extra,
        }
        result: dict[str, Any] = self._get("/telemetry/aggregate", params)
        return result
