"""The sensor simulator behind ``etp simulate`` (and the demo data)."""

from __future__ import annotations

from etp_client.simulator.runner import SimSensor, SimulationResult, simulate
from etp_client.simulator.scenarios import SCENARIOS, SimulationConfig
from etp_client.simulator.sensors import prepare_sensors
from etp_client.simulator.waveforms import WAVEFORMS

__all__ = [
    "SCENARIOS",
    "WAVEFORMS",
    "SimSensor",
    "SimulationConfig",
    "SimulationResult",
    "prepare_sensors",
    "simulate",
]
