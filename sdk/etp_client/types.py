"""The shapes the API answers with, as ``TypedDict``s (plain dicts at run time).

Timestamps and ids arrive as strings (ISO-8601 with offset, UUID). The server may add fields
(the contract only grows), which a ``TypedDict`` tolerates; these list what the client relies on.
"""

from __future__ import annotations

from typing import Any, Generic, NotRequired, TypedDict, TypeVar

T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    items: list[T]
    next_cursor: str | None


class User(TypedDict):
    id: str
    email: str
    display_name: str
    created_at: str


class ApiToken(TypedDict):
    id: str
    name: str
    preview: str
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    token: NotRequired[str]  # only in the answer that created it


class Project(TypedDict):
    id: str
    name: str
    description: str
    created_by: str
    created_at: str
    updated_at: str
    role: NotRequired[str]


class Member(TypedDict):
    user_id: str
    email: str
    display_name: str
    role: str
    created_at: str


class Experiment(TypedDict):
    id: str
    project_id: str
    name: str
    description: str
    experiment_type: str
    status: str
    tags: list[str]
    metadata: dict[str, Any]
    created_by: str
    created_at: str
    updated_at: str
    archived_at: str | None


class Run(TypedDict):
    id: str
    experiment_id: str
    project_id: str
    name: str
    status: str
    params: dict[str, Any]
    env: dict[str, Any]
    git_sha: str | None
    tags: list[str]
    notes: str
    metadata: dict[str, Any]
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None


class CaptureSession(TypedDict):
    id: str
    run_id: str
    project_id: str
    ordinal: int
    status: str
    previous_status: str | None
    started_at: str | None
    stopped_at: str | None
    duration_seconds: float | None
    notes: str
    summary: dict[str, Any] | None
    failure_reason: str | None
    created_by: str
    created_at: str
    updated_at: str


class Sensor(TypedDict):
    id: str
    project_id: str
    name: str
    type: str
    input_unit: str
    display_unit: str
    expected_rate_hz: float | None
    description: str
    token_preview: str
    status: str
    last_seen_at: str | None
    rate_points_per_s: float | None
    burst_points: int | None
    created_at: str
    updated_at: str
    shared: bool
    token: NotRequired[str]  # only when created or rotated


class IngestError(TypedDict):
    id: int
    created_at: str
    code: str
    message: str
    point_index: int | None
    sample: str | None


class Profile(TypedDict):
    id: str
    sensor_id: str
    version: int
    kind: str
    payload: dict[str, Any]
    status: str
    valid_from: str | None
    valid_to: str | None
    description: str
    created_by: str
    created_at: str
    activated_at: str | None


class Rejection(TypedDict):
    index: int
    code: str
    message: str


class IngestResult(TypedDict):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class Point(TypedDict):
    """One telemetry point as sent: ``ts`` (ISO-8601 or epoch number), raw ``value``."""

    ts: str | float | int
    value: float
    meta: NotRequired[dict[str, Any]]


class Artifact(TypedDict):
    id: str
    run_id: str
    project_id: str
    name: str
    type: str | None
    size_bytes: int
    sha256: str
    content_type: str
    metadata: dict[str, Any]
    status: str
    storage: str
    approved_by: str | None
    approved_at: str | None
    created_by: str
    created_at: str
    content_url: str


class Export(TypedDict, total=False):
    """An export job: ``status`` queued, running (``progress``), succeeded (``download_url``),
    failed (``error``) or expired."""

    id: str
    project_id: str
    kind: str
    format: str
    params: dict[str, Any]
    status: str
    progress: float
    row_count: int | None
    size_bytes: int | None
    sha256: str | None
    error: str | None
    download_url: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
