"""Experiments, runs (with status changes, bulk updates, run sensors) and capture sessions."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from etp_client.errors import EtpError
from etp_client.resources.base import ApiBase, qid
from etp_client.types import CaptureSession, Experiment, Run, Sensor


def _filters(
    status: str | Sequence[str] | None,
    tags: Sequence[str] | None,
    q: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> dict[str, Any]:
    return {
        "status": [status] if isinstance(status, str) else status,
        "tags": tags,
        "q": q,
        "created_after": created_after,
        "created_before": created_before,
    }


class ExperimentsApi(ApiBase):
    def list_experiments(
        self,
        project_id: Any,
        *,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        q: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[Experiment]:
        """Newest first; ``tags`` must all match; ``q`` searches names and descriptions."""
        params = _filters(status, tags, q, created_after, created_before)
        return self._list(f"/projects/{qid(project_id)}/experiments", params, limit)

    def create_experiment(
        self,
        project_id: Any,
        name: str,
        *,
        description: str = "",
        experiment_type: str = "",
        tags: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> Experiment:
        body = {
            "name": name,
            "description": description,
            "experiment_type": experiment_type,
            "tags": list(tags),
            "metadata": metadata or {},
        }
        result: Experiment = self._post(f"/projects/{qid(project_id)}/experiments", body)
        return result

    def get_experiment(self, experiment_id: Any) -> Experiment:
        result: Experiment = self._get(f"/experiments/{qid(experiment_id)}")
        return result

    def update_experiment(self, experiment_id: Any, **changes: Any) -> Experiment:
        """Changes ``name``, ``description``, ``experiment_type``, ``tags`` or ``metadata``."""
        result: Experiment = self._patch(f"/experiments/{qid(experiment_id)}", changes)
        return result

    def delete_experiment(self, experiment_id: Any) -> None:
        self._delete(f"/experiments/{qid(experiment_id)}")

    def archive_experiment(self, experiment_id: Any) -> Experiment:
        result: Experiment = self._post(f"/experiments/{qid(experiment_id)}/archive")
        return result

    def unarchive_experiment(self, experiment_id: Any) -> Experiment:
        result: Experiment = self._post(f"/experiments/{qid(experiment_id)}/unarchive")
        return result

    def find_experiment(self, project_id: Any, name: str) -> Experiment | None:
        found = self.list_experiments(project_id, q=name)
        return next((e for e in found if e["name"] == name), None)

    def get_or_create_experiment(self, project_id: Any, name: str) -> Experiment:
        return self.find_experiment(project_id, name) or self.create_experiment(project_id, name)


class RunsApi(ApiBase):
    def list_runs(
        self,
        *,
        experiment_id: Any = None,
        project_id: Any = None,
        status: str | Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        q: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """An experiment's runs, or (with ``project_id``) a search over a project's runs.
        ``sort``: ``-created_at`` (default), ``created_at``, ``name``, ``-name``."""
        params = {**_filters(status, tags, q, created_after, created_before), "sort": sort}
        if experiment_id is not None and project_id is None:
            return self._list(f"/experiments/{qid(experiment_id)}/runs", params, limit)
        if project_id is None:
            raise ValueError("list_runs needs experiment_id or project_id")
        if experiment_id is not None:
            params["experiment_id"] = qid(experiment_id)
        return self._list(f"/projects/{qid(project_id)}/runs", params, limit)

    def create_run(
        self,
        experiment_id: Any,
        name: str,
        *,
        params: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        git_sha: str | None = None,
        tags: Sequence[str] = (),
        notes: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> Run:
        body = {
            "name": name,
            "params": params or {},
            "env": env or {},
            "git_sha": git_sha,
            "tags": list(tags),
            "notes": notes,
            "metadata": metadata or {},
        }
        result: Run = self._post(f"/experiments/{qid(experiment_id)}/runs", body)
        return result

    def get_run(self, run_id: Any) -> Run:
        result: Run = self._get(f"/runs/{qid(run_id)}")
        return result

    def update_run(self, run_id: Any, **changes: Any) -> Run:
        """``params`` merge (write-once per key); ``tags``/``metadata`` are replaced."""
        result: Run = self._patch(f"/runs/{qid(run_id)}", changes)
        return result

    def set_run_status(self, run_id: Any, status: str) -> Run:
        """``draft → running → succeeded | failed → archived``."""
        result: Run = self._post(f"/runs/{qid(run_id)}/status", {"status": status})
        return result

    def batch_run_status(self, run_ids: Iterable[Any], status: str) -> list[Run]:
        """All or nothing; a ``Conflict`` carries ``details["failures"]`` per run."""
        body = {"run_ids": [qid(r) for r in run_ids], "status": status}
        items: list[Run] = self._post("/runs:batch-status", body)["items"]
        return items

    def bulk_tag_runs(
        self, run_ids: Iterable[Any], *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> list[Run]:
        body = {"run_ids": [qid(r) for r in run_ids], "add": list(add), "remove": list(remove)}
        items: list[Run] = self._post("/runs:bulk-tags", body)["items"]
        return items

    def list_run_sensors(self, run_id: Any) -> list[Sensor]:
        return self._list(f"/runs/{qid(run_id)}/sensors")

    def set_run_sensors(self, run_id: Any, sensor_ids: Iterable[Any]) -> list[Sensor]:
        """The sensors whose points the run's capture sessions record (replaces the set)."""
        body = {"sensor_ids": [qid(s) for s in sensor_ids]}
        items: list[Sensor] = self._put(f"/runs/{qid(run_id)}/sensors", body)["items"]
        return items


class CaptureApi(ApiBase):
    def list_capture_sessions(self, run_id: Any) -> list[CaptureSession]:
        return self._list(f"/runs/{qid(run_id)}/capture-sessions")

    def start_capture(self, run_id: Any, *, notes: str = "") -> CaptureSession:
        """Starts the run's next capture session (or returns the one running)."""
        result: CaptureSession = self._post(
            f"/runs/{qid(run_id)}/capture-sessions", {"notes": notes}
        )
        return result

    def stop_capture(self, capture_session_id: Any) -> CaptureSession:
        result: CaptureSession = self._post(f"/capture-sessions/{qid(capture_session_id)}/stop")
        return result

    def get_capture_session(self, capture_session_id: Any) -> CaptureSession:
        result: CaptureSession = self._get(f"/capture-sessions/{qid(capture_session_id)}")
        return result

    def delete_capture_session(self, capture_session_id: Any) -> None:
        self._delete(f"/capture-sessions/{qid(capture_session_id)}")

    def wait_capture_summary(
        self, capture_session_id: Any, *, timeout_s: float = 30.0, poll_s: float = 0.25
    ) -> CaptureSession:
        """Polls a stopped session until the server has written its summary."""
        deadline = time.monotonic() + timeout_s
        while True:
            session = self.get_capture_session(capture_session_id)
            if session.get("summary") is not None or session["status"] == "failed":
                return session
            if time.monotonic() >= deadline:
                raise EtpError(
                    f"capture session {qid(capture_session_id)} has no summary after "
                    f"{timeout_s:g} s (status {session['status']})",
                    code="timeout",
                )
            time.sleep(poll_s)
