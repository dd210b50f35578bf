"""What one simulated sensor sends and when, scenario by scenario.

- ``normal``: every sample at the rate, on time.
- ``burst``: every ``burst_every_s`` the rate jumps ``burst_factor``-fold for ``burst_s``
  (more points than expected arrive in one request; 429s are retried after ``Retry-After``).
- ``dropout``: the sensor goes silent for ``dropout_s`` every ``dropout_every_s``; those samples
  are lost, so the capture summary shows gaps and coverage below 1.
- ``late``: batches arrive shuffled and ``late_fraction`` of the points ``late_s`` late (with
  their original timestamps): all accepted, stored in time order, no journal entries.
- ``clock-skew``: the sensor's clock runs ``skew_s`` ahead (default 600 s, past the server's
  300 s tolerance): points are rejected as ``timestamp_in_future`` and journaled.
- ``bad-data``: every ``bad_every``-th point is broken (NaN, Infinity, text, null, a boolean,
  no timestamp): rejected one by one (``invalid_value``, ``invalid_timestamp``), the rest kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from etp_client.simulator.waveforms import make_waveform

SCENARIOS = ("normal", "burst", "dropout", "late", "clock-skew", "bad-data")
BAD_VALUES: tuple[Any, ...] = (float("nan"), "n/a", None, float("inf"), True, "missing-ts")


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    rate_hz: float = 10.0
    duration_s: float = 10.0
    scenario: str = "normal"
    waveform: str = "sine"
    send_interval_s: float = 0.25
    seed: int | None = None
    burst_every_s: float = 2.0
    burst_s: float = 0.25
    burst_factor: float = 10.0
    dropout_every_s: float = 3.0
    dropout_s: float = 1.0
    late_fraction: float = 0.2
    late_s: float = 1.5
    skew_s: float = 600.0
    bad_every: int = 5

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; one of {', '.join(SCENARIOS)}")
        if self.rate_hz <= 0 or self.duration_s <= 0:
            raise ValueError("rate and duration must be positive")


class PointSource:
    """The points of one sensor, released as wall-clock time passes."""

    def __init__(self, config: SimulationConfig, index: int, start_epoch_s: float) -> None:
        self.config = config
        self.start = start_epoch_s
        seed = None if config.seed is None else config.seed * 1000 + index
        self.rng = random.Random(seed)
        self.wave = make_waveform(config.waveform, index=index, rng=self.rng)
        self.next_t = 0.0
        self.count = 0
        self.held: list[tuple[float, dict[str, Any]]] = []  # (release at epoch s, point)

    @property
    def finished(self) -> bool:
        return self.next_t >= self.config.duration_s - 1e-6 and not self.held

    def _interval(self, t: float) -> float:
        c = self.config
        if c.scenario == "burst" and (t % c.burst_every_s) < c.burst_s:
            return 1.0 / (c.rate_hz * c.burst_factor)
        return 1.0 / c.rate_hz

    def _silent(self, t: float) -> bool:
        c = self.config
        # The first window starts after one period, so a short run still records some data.
        return (
            c.scenario == "dropout"
            and t >= c.dropout_every_s - c.dropout_s
            and (t % c.dropout_every_s) >= c.dropout_every_s - c.dropout_s
        )

    def _point(self, t: float) -> dict[str, Any]:
        c = self.config
        ts_s = self.start + t + (c.skew_s if c.scenario == "clock-skew" else 0.0)
        body: dict[str, Any] = {"ts": int(ts_s * 1_000_000), "value": round(self.wave(t), 6)}
        self.count += 1
        if c.scenario == "bad-data" and self.count % c.bad_every == 0:
            bad = BAD_VALUES[(self.count // c.bad_every) % len(BAD_VALUES)]
            if bad == "missing-ts":
                del body["ts"]
            else:
                body["value"] = bad
        return body

    def take(self, now_epoch_s: float) -> list[dict[str, Any]]:
        """Points due by ``now`` (and held-back late points whose time has come)."""
        c = self.config
        horizon = min(now_epoch_s - self.start, c.duration_s)
        fresh: list[dict[str, Any]] = []
        # A little slack: summed float intervals drift (60 x 0.1 s is 5.9999... s).
        while self.next_t <= horizon + 1e-9 and self.next_t < c.duration_s - 1e-6:
            t = round(self.next_t, 6)  # µs, like the timestamps: no float drift in windows
            self.next_t = t + self._interval(t)
            if not self._silent(t):
                fresh.append(self._point(t))
        if c.scenario != "late":
            return fresh
        out = [p for release, p in self.held if release <= now_epoch_s]
        self.held = [(r, p) for r, p in self.held if r > now_epoch_s]
        for item in fresh:
            if self.rng.random() < c.late_fraction:
                self.held.append((now_epoch_s + c.late_s, item))
            else:
                out.append(item)
        self.rng.shuffle(out)
        return out

    def drain(self) -> list[dict[str, Any]]:
        """Everything still held back (the end of the run)."""
        out = [p for _, p in self.held]
        self.held = []
        return out
