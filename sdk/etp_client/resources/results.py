"""What a run produces: metrics, artifacts; exports of telemetry, runs and experiments;
comparisons."""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from etp_client.download import ExportQueued, Progress, download
from etp_client.errors import (
    ConnectionFailed,
    EtpError,
    RateLimited,
    ServerError,
    Unavailable,
)
from etp_client.points import chunks
from etp_client.resources.base import ApiBase, qid
from etp_client.resources.telemetry import telemetry_filters
from etp_client.transport import API_PREFIX
from etp_client.types import Artifact, Export

METRICS_PER_REQUEST = 10_000  # the server's published limit per POST /runs/{rid}/metrics
UPLOAD_CHUNK_BYTES = 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(UPLOAD_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(UPLOAD_CHUNK_BYTES):
            yield block


def _api_path(url: str) -> str:
    """A download URL from the server as a path relative to the API base."""
    if "://" in url:
        url = "/" + url.split("://", 1)[1].split("/", 1)[-1]
    return url[len(API_PREFIX) :] if url.startswith(API_PREFIX) else url


class MetricsApi(ApiBase):
    def limits(self) -> dict[str, Any]:
        """The server's published limits (metric batches, artifacts, ingest, comparisons)."""
        result: dict[str, Any] = self._get("/limits")
        return result

    def log_metrics(self, run_id: Any, metrics: Sequence[Mapping[str, Any]]) -> int:
        """Appends ``{"name", "value", "step"?, "ts"?}`` entries, 10,000 per request at most
        (each request all or nothing); returns how many the server accepted."""
        accepted = 0
        for chunk in chunks(list(metrics), METRICS_PER_REQUEST):
            answer = self._post(f"/runs/{qid(run_id)}/metrics", {"metrics": list(chunk)})
            accepted += int((answer or {}).get("accepted", len(chunk)))
        return accepted

    def get_metrics(
        self,
        run_id: Any,
        *,
        name: str | Sequence[str] | None = None,
        max_points: int = 1000,
        step_from: int | None = None,
        step_to: int | None = None,
    ) -> dict[str, Any]:
        """Every series (or those named) downsampled into at most ``max_points`` step buckets,
        each with count, exact min and max, avg, first and last."""
        params = {
            "name": [name] if isinstance(name, str) else name,
            "max_points": max_points,
            "step_from": step_from,
            "step_to": step_to,
        }
        result: dict[str, Any] = self._get(f"/runs/{qid(run_id)}/metrics", params)
        return result

    def iter_metrics(
        self,
        run_id: Any,
        *,
        name: str | Sequence[str] | None = None,
        step_from: int | None = None,
        step_to: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every raw point in (name, step) order, page after page."""
        params = {
            "name": [name] if isinstance(name, str) else name,
            "step_from": step_from,
            "step_to": step_to,
        }
        return self.iter_pages(f"/runs/{qid(run_id)}/metrics", params)

    def metrics_summary(self, run_id: Any) -> list[dict[str, Any]]:
        """Per metric name: last, min, max, avg, count, first and last step."""
        return self._list(f"/runs/{qid(run_id)}/metrics/summary")


class ArtifactsApi(ApiBase):
    def upload_artifact(
        self,
        run_id: Any,
        path: str | Path,
        *,
        name: str | None = None,
        content_type: str | None = None,
        type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Streams a file to the run; the server checks the sha256 sent along.

        The server does not take idempotency keys for uploads, so before retrying a failed
        attempt this looks for an artifact of the run with the same name and sha256 (the
        earlier attempt may have landed) and returns it instead of uploading twice."""
        path = Path(path)
        name = name or path.name
        digest = sha256_of(path)
        content_type = (
            content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        params = {
            "name": name,
            "sha256": digest,
            "type": type,
            "metadata": orjson.dumps(dict(metadata)).decode() if metadata else None,
        }
        policy = self._http.retry
        once = replace(policy, max_attempts=1)
        attempt = 0
        while True:
            attempt += 1
            try:
                result: Artifact = self._http.call(
                    "POST",
                    f"/runs/{qid(run_id)}/artifacts",
                    params=params,
                    content=lambda: _file_chunks(path),
                    headers={
                        "Content-Type": content_type,
                        "Content-Length": str(path.stat().st_size),
                    },
                    retry=once,
                )
                return result
            except (ConnectionFailed, RateLimited, Unavailable, ServerError) as exc:
                final = attempt >= policy.max_attempts
                if final or (isinstance(exc, ServerError) and exc.status not in (502, 504)):
                    raise
                landed = self._find_artifact(run_id, name, digest)
                if landed is not None:
                    return landed
                self._http.sleep(policy.delay_s(attempt, exc.retry_after_s))

    def _find_artifact(self, run_id: Any, name: str, sha256: str) -> Artifact | None:
        try:
            found = self.list_artifacts(run_id)
        except EtpError:
            return None
        return next((a for a in found if a["name"] == name and a["sha256"] == sha256), None)

    def approve_artifact(self, artifact_id: Any) -> Artifact:
        """Marks the artifact approved (project owners)."""
        result: Artifact = self._post(f"/artifacts/{qid(artifact_id)}/approve")
        return result

    def list_artifacts(self, run_id: Any, *, status: str | None = None) -> list[Artifact]:
        """Newest first; ``status`` ``ready`` (the server's default), ``pending`` or ``all``."""
        return self._list(f"/runs/{qid(run_id)}/artifacts", {"status": status})

    def get_artifact(self, artifact_id: Any) -> Artifact:
        result: Artifact = self._get(f"/artifacts/{qid(artifact_id)}")
        return result

    def download_artifact(
        self,
        artifact_id: Any,
        dest: str | Path,
        *,
        progress: Progress | None = None,
        resume: bool = True,
    ) -> Path:
        return download(
            self._http,
            f"/artifacts/{qid(artifact_id)}/content",
            Path(dest),
            progress=progress,
            resume=resume,
        )

    def delete_artifact(self, artifact_id: Any) -> None:
        self._delete(f"/artifacts/{qid(artifact_id)}")


class ExportsApi(ApiBase):
    def export_telemetry(
        self,
        dest: str | Path,
        *,
        format: str = "csv",
        sensor_ids: Iterable[Any] | None = None,
        run_id: Any = None,
        capture_session_id: Any = None,
        from_: Any = None,
        to: Any = None,
        value: str | None = None,
        progress: Progress | None = None,
        resume: bool = True,
    ) -> Path:
        """``GET /telemetry/export`` streamed to ``dest`` (resumed when the server allows).
        An export too big to stream becomes a job on the server: then this waits for the job
        and downloads its file."""
        params = {
            **telemetry_filters(
                sensor_ids=sensor_ids,
                run_id=run_id,
                capture_session_id=capture_session_id,
                from_=from_,
                to=to,
            ),
            "format": format,
            "value": value,
        }
        try:
            return download(
                self._http,
                "/telemetry/export",
                Path(dest),
                params=params,
                progress=progress,
                resume=resume,
            )
        except ExportQueued as queued:
            job = self.wait_export(queued.job["id"])
            return self.download_export(job["id"], dest, progress=progress, resume=resume)

    def export_runs(
        self,
        project_id: Any,
        dest: str | Path,
        *,
        format: str = "csv",
        progress: Progress | None = None,
        resume: bool = True,
        **filters: Any,
    ) -> Path:
        """Every matching run (the run search's filters) as CSV or JSON."""
        return download(
            self._http,
            f"/projects/{qid(project_id)}/runs/export",
            Path(dest),
            params={**filters, "format": format},
            progress=progress,
            resume=resume,
        )

    def export_experiments(
        self,
        project_id: Any,
        dest: str | Path,
        *,
        format: str = "csv",
        progress: Progress | None = None,
        resume: bool = True,
        **filters: Any,
    ) -> Path:
        return download(
            self._http,
            f"/projects/{qid(project_id)}/experiments/export",
            Path(dest),
            params={**filters, "format": format},
            progress=progress,
            resume=resume,
        )

    def create_export(
        self,
        kind: str,
        *,
        format: str = "csv",
        project_id: Any = None,
        experiment_id: Any = None,
        run_id: Any = None,
        capture_session_id: Any = None,
        sensor_ids: Iterable[Any] = (),
        from_: Any = None,
        to: Any = None,
    ) -> Export:
        """An export job (``POST /exports``) of ``telemetry``, ``runs`` or ``metrics``; poll with
        ``wait_export``, then ``download_export``."""
        spec = {
            "kind": kind,
            "format": format,
            "project_id": project_id and qid(project_id),
            "experiment_id": experiment_id and qid(experiment_id),
            "run_id": run_id and qid(run_id),
            "capture_session_id": capture_session_id and qid(capture_session_id),
            "sensor_ids": [qid(s) for s in sensor_ids],
            "from": from_,
            "to": to,
        }
        body = {k: v for k, v in spec.items() if v is not None}
        result: Export = self._post("/exports", body)
        return result

    def get_export(self, export_id: Any) -> Export:
        result: Export = self._get(f"/exports/{qid(export_id)}")
        return result

    def wait_export(
        self, export_id: Any, *, timeout_s: float = 600.0, poll_s: float = 1.0
    ) -> Export:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get_export(export_id)
            if job.get("status") in ("succeeded", "failed", "expired"):
                return job
            if time.monotonic() >= deadline:
                raise EtpError(
                    f"export {qid(export_id)} is still {job.get('status')}", code="timeout"
                )
            time.sleep(poll_s)

    def download_export(
        self,
        export_id: Any,
        dest: str | Path,
        *,
        progress: Progress | None = None,
        resume: bool = True,
    ) -> Path:
        """Downloads a finished export job's file (resumable)."""
        job = self.get_export(export_id)
        url = job.get("download_url")
        if job.get("status") != "succeeded" or not url:
            raise EtpError(
                f"export {qid(export_id)} is {job.get('status')}, not ready to download",
                code="not_ready",
            )
        return download(self._http, _api_path(url), Path(dest), progress=progress, resume=resume)


class ComparisonsApi(ApiBase):
    def create_comparison(
        self,
        run_ids: Iterable[Any],
        *,
        baseline_run_id: Any = None,
        max_points: int | None = None,
        metric_names: Sequence[str] | None = None,
        capture_session_ids: Iterable[Any] | None = None,
        telemetry: bool = True,
    ) -> dict[str, Any]:
        """Compares up to 100 runs (params side by side, metric deltas against the baseline,
        telemetry overlays); stored, so ``id`` can be shared."""
        body: dict[str, Any] = {"run_ids": [qid(r) for r in run_ids], "telemetry": telemetry}
        if baseline_run_id is not None:
            body["baseline_run_id"] = qid(baseline_run_id)
        if max_points is not None:
            body["max_points"] = max_points
        if metric_names is not None:
            body["metric_names"] = list(metric_names)
        if capture_session_ids is not None:
            body["capture_session_ids"] = [qid(c) for c in capture_session_ids]
        result: dict[str, Any] = self._post("/comparisons", body)
        return result

    def get_comparison(self, comparison_id: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/comparisons/{qid(comparison_id)}")
        return result

    def export_comparison(
        self,
        comparison_id: Any,
        dest: str | Path,
        *,
        format: str = "csv",
        part: str = "runs",
    ) -> Path:
        """``csv`` (``part`` runs or telemetry), ``json`` or a self-contained ``html`` report."""
        return download(
            self._http,
            f"/comparisons/{qid(comparison_id)}/export",
            Path(dest),
            params={"format": format, "part": part},
        )
