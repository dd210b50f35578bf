"""Signal shapes for simulated sensors: value as a function of time (seconds since start)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

WAVEFORMS = ("sine", "saw", "square", "random-walk", "noise")
Waveform = Callable[[float], float]


def make_waveform(
    name: str,
    *,
    index: int = 0,
    period_s: float = 10.0,
    amplitude: float = 10.0,
    offset: float = 20.0,
    rng: random.Random | None = None,
) -> Waveform:
    """A waveform; ``index`` shifts the phase so sensors of one run do not overlap exactly."""
    rng = rng or random.Random(index)
    phase = index * 0.7
    if name == "sine":
        return lambda t: offset + amplitude * math.sin(2 * math.pi * t / period_s + phase)
    if name == "saw":
        return lambda t: offset + amplitude * (2 * (((t / period_s) + phase) % 1.0) - 1)
    if name == "square":
        return lambda t: (
            offset + amplitude * (1.0 if ((t / period_s) + phase) % 1.0 < 0.5 else -1.0)
        )
    if name == "noise":
        return lambda _t: offset + rng.gauss(0.0, amplitude / 3)
    if name == "random-walk":
        state = {"value": offset}
        step = amplitude / 20

        def walk(_t: float) -> float:
            state["value"] += rng.gauss(0.0, step)
            return state["value"]

        return walk
    raise ValueError(f"unknown waveform {name!r}; choose one of {', '.join(WAVEFORMS)}")
