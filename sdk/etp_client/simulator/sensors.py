"""Getting tokens for the simulated sensors ``sim-1..N`` of a project.

A sensor token is shown once, at creation or rotation, so existing ``sim-*`` sensors are
reused by rotating their token (the old one stops working: only the simulator uses them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etp_client.simulator.runner import SimSensor

if TYPE_CHECKING:
    from etp_client.client import Client


def prepare_sensors(
    client: Client,
    project_id: Any,
    count: int,
    *,
    rate_hz: float | None = None,
    prefix: str = "sim",
    sensor_type: str = "simulated",
) -> list[SimSensor]:
    """Creates the missing ``{prefix}-1..count`` sensors and rotates the tokens of the others;
    ``expected_rate_hz`` is set to ``rate_hz`` so capture summaries can compute coverage."""
    existing = {s["name"]: s for s in client.list_sensors(project_id, q=f"{prefix}-")}
    sensors: list[SimSensor] = []
    for number in range(1, count + 1):
        name = f"{prefix}-{number}"
        found = existing.get(name)
        if found is None or found.get("shared"):
            created = client.create_sensor(
                project_id,
                name,
                type=sensor_type,
                expected_rate_hz=rate_hz,
                description="created by etp simulate",
            )
            sensors.append(SimSensor(name=name, token=created["token"], id=created["id"]))
            continue
        if rate_hz is not None and found.get("expected_rate_hz") != rate_hz:
            client.update_sensor(found["id"], expected_rate_hz=rate_hz)
        rotated = client.rotate_sensor_token(found["id"])
        sensors.append(SimSensor(name=name, token=rotated["token"], id=found["id"]))
    return sensors
