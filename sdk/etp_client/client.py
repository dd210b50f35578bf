"""``Client``: every API resource as typed methods, plus ``start_run`` for training scripts."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from etp_client.config import resolve_credentials
from etp_client.resources.projects import AccountApi, ProjectsApi
from etp_client.resources.results import ArtifactsApi, ComparisonsApi, ExportsApi, MetricsApi
from etp_client.resources.runs import CaptureApi, ExperimentsApi, RunsApi
from etp_client.resources.sensors import ProfilesApi, SensorsApi
from etp_client.resources.telemetry import TelemetryApi
from etp_client.tracking import ActiveRun
from etp_client.transport import RetryPolicy, Transport


class Client(
    AccountApi,
    ProjectsApi,
    ExperimentsApi,
    RunsApi,
    CaptureApi,
    SensorsApi,
    ProfilesApi,
    TelemetryApi,
    MetricsApi,
    ArtifactsApi,
    ExportsApi,
    ComparisonsApi,
):
    """The ETP API as a user (API token). Without arguments the URL and token come from
    ``ETP_URL``/``ETP_TOKEN`` or the file ``etp login`` writes.

        client = Client()
        project = client.create_project("Lab A")
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        credentials = resolve_credentials(url, token)
        self.url = credentials.url
        self._http = Transport(credentials.url, credentials.token, timeout_s=timeout_s, retry=retry)

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start_run(
        self,
        *,
        experiment: Any,
        project: Any = None,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        notes: str = "",
        capture_env: bool = True,
        flush_interval_s: float = 1.0,
    ) -> ActiveRun:
        """Creates a run and marks it running; use as a context manager::

            with client.start_run(experiment=eid, params={"lr": 0.1}) as run:
                run.log_metric("loss", 0.3, step=1)

        ``experiment`` is an experiment id (or dict), or a name together with ``project``
        (created when missing). Git SHA and environment are recorded unless ``capture_env``
        is false. On exit metrics are flushed and the run ends ``succeeded``, or ``failed``
        when the block raised.
        """
        return ActiveRun.create(
            self,
            experiment=experiment,
            project=project,
            name=name,
            params=params or {},
            tags=tags,
            notes=notes,
            capture_env=capture_env,
            flush_interval_s=flush_interval_s,
        )
