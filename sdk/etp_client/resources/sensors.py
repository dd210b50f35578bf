"""Sensors (tokens, sharing, the ingest error journal) and their conversion profiles."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from etp_client.resources.base import ApiBase, qid
from etp_client.types import IngestError, Profile, Sensor


class SensorsApi(ApiBase):
    def list_sensors(
        self,
        project_id: Any,
        *,
        type: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int | None = None,
    ) -> list[Sensor]:
        """The project's sensors and those shared into it."""
        params = {"type": type, "status": status, "q": q}
        return self._list(f"/projects/{qid(project_id)}/sensors", params, limit)

    def create_sensor(self, project_id: Any, name: str, **fields: Any) -> Sensor:
        """Registers a sensor; the answer's ``token`` is shown this once. ``fields``: ``type``,
        ``input_unit``, ``display_unit``, ``expected_rate_hz``, ``description``,
        ``rate_points_per_s``, ``burst_points``."""
        result: Sensor = self._post(
            f"/projects/{qid(project_id)}/sensors", {"name": name, **fields}
        )
        return result

    def get_sensor(self, sensor_id: Any) -> Sensor:
        result: Sensor = self._get(f"/sensors/{qid(sensor_id)}")
        return result

    def update_sensor(self, sensor_id: Any, **changes: Any) -> Sensor:
        result: Sensor = self._patch(f"/sensors/{qid(sensor_id)}", changes)
        return result

    def delete_sensor(self, sensor_id: Any) -> None:
        self._delete(f"/sensors/{qid(sensor_id)}")

    def rotate_sensor_token(self, sensor_id: Any, *, grace_period_s: int = 0) -> Sensor:
        """A new token (in this answer only); the old one stops working after the grace."""
        result: Sensor = self._post(
            f"/sensors/{qid(sensor_id)}/rotate-token", {"grace_period_s": grace_period_s}
        )
        return result

    def sensor_errors(self, sensor_id: Any, *, limit: int | None = None) -> list[IngestError]:
        """The sensor's ingest error journal, newest first."""
        return self._list(f"/sensors/{qid(sensor_id)}/errors", None, limit)

    def share_sensor(self, sensor_id: Any, project_ids: Iterable[Any]) -> dict[str, Any]:
        """Sets the projects the sensor is shared with (read access there)."""
        result: dict[str, Any] = self._put(
            f"/sensors/{qid(sensor_id)}/projects", {"project_ids": [qid(p) for p in project_ids]}
        )
        return result


class ProfilesApi(ApiBase):
    def list_profiles(self, sensor_id: Any, *, status: str | None = None) -> list[Profile]:
        return self._list(f"/sensors/{qid(sensor_id)}/profiles", {"status": status})

    def create_profile(
        self, sensor_id: Any, kind: str, payload: dict[str, Any], *, description: str = ""
    ) -> Profile:
        """A draft conversion profile: ``linear`` ``{"a", "b"}`` (physical = a·raw + b),
        ``polynomial`` ``{"coefficients"}`` or ``table`` ``{"points", "out_of_range"?}``."""
        body = {"kind": kind, "payload": payload, "description": description}
        result: Profile = self._post(f"/sensors/{qid(sensor_id)}/profiles", body)
        return result

    def get_profile(self, profile_id: Any) -> Profile:
        result: Profile = self._get(f"/profiles/{qid(profile_id)}")
        return result

    def activate_profile(self, profile_id: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"/profiles/{qid(profile_id)}/activate")
        return result

    def schedule_profile(self, profile_id: Any, valid_from: datetime) -> dict[str, Any]:
        result: dict[str, Any] = self._post(
            f"/profiles/{qid(profile_id)}/schedule", {"valid_from": valid_from}
        )
        return result

    def deprecate_profile(self, profile_id: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"/profiles/{qid(profile_id)}/deprecate")
        return result

    def backfill_preview(self, profile_id: Any, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"/profiles/{qid(profile_id)}/backfill-preview", spec)
        return result

    def backfill(self, profile_id: Any, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._post(f"/profiles/{qid(profile_id)}/backfill", spec)
        return result
