"""MLflow-style run tracking: ``with client.start_run(...) as run: run.log_metric(...)``.

Metrics are queued in memory and sent by one background thread every ``flush_interval_s``
(or as soon as a full request's worth, 10,000, is waiting), so logging never waits on the
network. Leaving the block flushes what is left and ends the run.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from etp_client.environment import capture_environment, git_sha
from etp_client.resources.base import qid
from etp_client.resources.results import METRICS_PER_REQUEST
from etp_client.types import Artifact, CaptureSession, Run

if TYPE_CHECKING:
    from etp_client.client import Client

log = logging.getLogger("etp_client")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class MetricBatcher:
    """Collects metric entries and sends them from a background thread, in order."""

    def __init__(self, client: Client, run_id: str, *, flush_interval_s: float = 1.0) -> None:
        self._client = client
        self._run_id = run_id
        self._interval_s = flush_interval_s
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # one request at a time keeps the order
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="etp-metrics", daemon=True)
        self._thread.start()

    def add(self, entries: Sequence[dict[str, Any]]) -> None:
        if self._closed.is_set():
            raise RuntimeError("the run has ended; its metrics can no longer be logged")
        with self._lock:
            self._pending.extend(entries)
            full = len(self._pending) >= METRICS_PER_REQUEST
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Sends everything queued so far (in the caller's thread); raises a send error."""
        with self._send_lock:
            while True:
                with self._lock:
                    batch = self._pending[:METRICS_PER_REQUEST]
                if not batch:
                    return
                self._client.log_metrics(self._run_id, batch)
                with self._lock:
                    del self._pending[: len(batch)]
                self.sent += len(batch)

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            try:
                self.flush()
                self.error = None
            except Exception as exc:  # kept queued; tried again next tick and at close
                self.error = exc
                log.warning("could not send metrics (will retry): %s", exc)

    def close(self) -> None:
        """Stops the thread and sends what is left; raises if that last send fails."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self.flush()


class ActiveRun:
    """A run in progress; made by ``Client.start_run``."""

    def __init__(self, client: Client, run: Run, *, flush_interval_s: float = 1.0) -> None:
        self.client = client
        self.info = run
        self.id = run["id"]
        self._metrics = MetricBatcher(client, self.id, flush_interval_s=flush_interval_s)
        self._capture: CaptureSession | None = None
        self._ended = False

    @classmethod
    def create(
        cls,
        client: Client,
        *,
        experiment: Any,
        project: Any,
        name: str | None,
        params: dict[str, Any],
        tags: Sequence[str],
        notes: str,
        capture_env: bool,
        flush_interval_s: float,
    ) -> ActiveRun:
        experiment_id = _experiment_id(client, experiment, project)
        run_name = name or datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")
        run = client.create_run(
            experiment_id,
            run_name,
            params=params,
            env=capture_environment() if capture_env else {},
            git_sha=git_sha() if capture_env else None,
            tags=tags,
            notes=notes,
        )
        run = client.set_run_status(run["id"], "running")
        return cls(client, run, flush_interval_s=flush_interval_s)

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.info['name']!r})"

    # Logging -------------------------------------------------------------------------------

    def log_metric(
        self, name: str, value: float, step: int | None = None, *, ts: datetime | None = None
    ) -> None:
        """Queues one value (sent in the background)."""
        self._metrics.add([_metric(name, value, step, ts)])

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, *, ts: datetime | None = None
    ) -> None:
        """Queues several values sharing a step and a timestamp."""
        when = ts or datetime.now(UTC)
        self._metrics.add([_metric(n, v, step, when) for n, v in values.items()])

    def log_params(self, params: Mapping[str, Any]) -> Run:
        """Adds parameters (a key, once set, keeps its value: the server refuses changes)."""
        self.info = self.client.update_run(self.id, params=dict(params))
        return self.info

    def set_tags(self, tags: Sequence[str]) -> Run:
        self.info = self.client.update_run(self.id, tags=list(tags))
        return self.info

    def log_artifact(self, path: str | Path, *, name: str | None = None) -> Artifact:
        return self.client.upload_artifact(self.id, path, name=name)

    def flush(self) -> None:
        """Sends the queued metrics now."""
        self._metrics.flush()

    # Capture sessions ------------------------------------------------------------------------

    def start_capture(self, *, notes: str = "") -> CaptureSession:
        """Starts recording the run's sensors (stopped at the latest when the run ends)."""
        self._capture = self.client.start_capture(self.id, notes=notes)
        return self._capture

    def stop_capture(self) -> CaptureSession | None:
        if self._capture is None:
            return None
        session = self.client.stop_capture(self._capture["id"])
        self._capture = None
        return session

    # Ending -------------------------------------------------------------------------------------

    def end(self, status: str = "succeeded") -> Run:
        """Flushes metrics, stops a capture it started, and sets the final status."""
        if self._ended:
            return self.info
        self._ended = True
        flush_error: BaseException | None = None
        try:
            self._metrics.close()
        except Exception as exc:
            flush_error = exc
        self.stop_capture()
        self.info = self.client.set_run_status(self.id, status)
        if flush_error is not None:
            raise flush_error
        return self.info

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("succeeded")
            return
        try:
            self.end("failed")
        except Exception as end_error:  # never hide the exception of the block itself
            log.error("could not end run %s cleanly: %s", self.id, end_error)


def _metric(name: str, value: float, step: int | None, ts: datetime | None) -> dict[str, Any]:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r}: value must be finite, got {value!r}")
    entry: dict[str, Any] = {"name": name, "value": number, "ts": (ts or datetime.now(UTC))}
    if step is not None:
        entry["step"] = int(step)
    return entry


def _experiment_id(client: Client, experiment: Any, project: Any) -> str:
    if isinstance(experiment, Mapping | uuid.UUID) or (
        isinstance(experiment, str) and _UUID.match(experiment)
    ):
        return qid(experiment)
    if project is None:
        raise ValueError("start_run(experiment=<name>) needs project=<id> too")
    return client.get_or_create_experiment(project, str(experiment))["id"]
