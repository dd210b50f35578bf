"""Artifacts: files attached to a run (type, display name, size, sha256, content type,
metadata, approval), with their bytes in an ``ObjectStore``.

A name is a display name only: the bytes are stored under a server-generated key, and a
download's file name is derived from the name by ``download_filename`` (no path part
survives). An upload first inserts a ``pending`` row (so an interrupted upload can be found and
cleaned up), streams the bytes to the store while counting and hashing them, then marks the
row ``ready`` with an audit event. No database connection is held while bytes flow.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote
from uuid import UUID

from asyncpg import Record

from core.db import Database
from core.errors import Conflict, InvalidInput, NotFound
from core.experiments import clean_json_object
from core.object_store import ObjectStores, PresignedRequest, new_object_key, verify_object
from core.principal import AuditContext
from core.stores import artifacts as store
from core.stores import audit as audit_store

log = logging.getLogger("etp.artifacts")

NAME_MAX = 255
METADATA_MAX_BYTES = 16 * 1024
_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
# Text direction overrides can disguise a name ("evil\u202egpj.exe"); they are refused.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|;\x00-\x1f\x7f]')
DEFAULT_FILENAME = "artifact"


@dataclass(frozen=True, slots=True)
class UploadSpec:
    """What the client says about a file before its bytes arrive."""

    name: str
    artifact_type: str = "file"
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def clean_name(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidInput("name is required (a display name)", details={"field": "name"})
    if len(value) > NAME_MAX:
        raise InvalidInput(
            f"name must have at most {NAME_MAX} characters", details={"field": "name"}
        )
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value):
        raise InvalidInput("name must not contain control characters", details={"field": "name"})
    return value


def _refuse_nul(value: Any, path: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(
                f"metadata{path} contains a NUL character", details={"field": "metadata"}
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, path)
            _refuse_nul(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{path}[{index}]")


def clean_spec(
    *,
    name: str | None,
    artifact_type: str | None,
    content_type: str | None,
    sha256: str | None,
    metadata: Any,
) -> UploadSpec:
    """Validates what the client sends along (422 naming the field)."""
    kind = artifact_type or "file"
    if not _TYPE.fullmatch(kind):
        raise InvalidInput(
            "type is 1 to 64 characters of letters, digits, '_', '.', '-'",
            details={"field": "type"},
        )
    mime = (content_type or "").split(";", 1)[0].strip().lower() or "application/octet-stream"
    if not _CONTENT_TYPE.fullmatch(mime):
        raise InvalidInput("content_type is not a media type", details={"field": "content_type"})
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise InvalidInput("sha256 must be 64 hexadecimal digits", details={"field": "sha256"})
    meta = clean_json_object(
        {} if metadata is None else metadata, field="metadata", max_bytes=METADATA_MAX_BYTES
    )
    _refuse_nul(meta, "")
    return UploadSpec(clean_name(name), kind, mime, sha256.lower() if sha256 else None, meta)


def download_filename(name: str) -> str:
    """A file name for ``Content-Disposition``: the last path part of the display name after
    percent-decoding and Unicode compatibility folding (so encoded and look-alike slashes and
    dots count as such), with characters that mean something to a file system replaced."""
    folded = name
    for _ in range(3):  # "%2e%2e%2f" must not turn into "../" in a client that decodes it
        folded = unquote(unicodedata.normalize("NFKC", folded))
    last = re.split(r"[\\/]", folded)[-1]
    cleaned = _FILENAME_UNSAFE.sub("_", last).strip(" .")
    if not cleaned or set(cleaned) <= {".", "_"}:
        return DEFAULT_FILENAME
    if len(cleaned) > 200:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (
            (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 16 else cleaned[:200]
        )
    return cleaned


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 8187)."""
    filename = download_filename(name)
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range: bytes=…`` request, ``None`` for the whole
    file (no header, several ranges, another unit, bad syntax); ``ValueError`` when the
    range cannot be satisfied (answered 416)."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first_raw, last_raw = match.groups()
    if not first_raw:
        if not last_raw:
            return None
        suffix = int(last_raw)
        if suffix == 0 or size == 0:
            raise ValueError("unsatisfiable range")
        return max(0, size - suffix), size - 1
    first = int(first_raw)
    if last_raw and int(last_raw) < first:
        return None
    if first >= size:
        raise ValueError("unsatisfiable range")
    return first, size - 1 if not last_raw else min(int(last_raw), size - 1)


# Uploads ----------------------------------------------------------------------------------------


async def _begin(
    db: Database,
    *,
    run_id: UUID,
    spec: UploadSpec,
    storage: str,
    audit: AuditContext,
    upload_expires_at: datetime | None = None,
) -> Record:
    async with db.transaction() as conn:
        run = await store.lock_run_for_upload(conn, run_id=run_id)
        if run is None:
            raise NotFound("run not found")
        if run["status"] == "archived":
            raise Conflict(
                "the run is archived; it takes no new artifacts",
                details={"current_status": "archived"},
            )
        return await store.insert_pending_artifact(
            conn,
            run_id=run_id,
            project_id=run["project_id"],
            name=spec.name,
            artifact_type=spec.artifact_type,
            content_type=spec.content_type,
            metadata=spec.metadata,
            sha256=spec.sha256,
            size_bytes=0,
            storage_key=new_object_key(),
            storage=storage,
            created_by=audit.actor_id,
            upload_expires_at=upload_expires_at,
        )


async def _finish(
    db: Database, row: Record, size_bytes: int, sha256: str, role: str, audit: AuditContext
) -> Record:
    async with db.transaction() as conn:
        ready = await store.mark_ready(
            conn, artifact_id=row["id"], size_bytes=size_bytes, sha256=sha256
        )
        if ready is None:
            raise Conflict("the upload was cancelled or already completed")
        await _audit(conn, ready, role, audit, "artifact.created", after=_summary(ready))
    return ready


async def _discard(db: Database, stores: ObjectStores, row: Record) -> None:
    """Best effort: drops a failed upload's object and pending row."""
    with contextlib.suppress(Exception):
        await stores.of(row["storage"]).delete(row["storage_key"])
    with contextlib.suppress(Exception):
        async with db.acquire() as conn:
            await store.delete_artifact_row(conn, artifact_id=row["id"])


async def upload_artifact(
    db: Database,
    stores: ObjectStores,
    *,
    run_id: UUID,
    spec: UploadSpec,
    chunks: AsyncIterable[bytes],
    role: str,
    audit: AuditContext,
) -> Record:
    """Streams the bytes into the configured store; refused past the size limit or on a
    sha256 mismatch, leaving neither an object nor a row behind."""
    target = stores.current
    row = await _begin(db, run_id=run_id, spec=spec, storage=target.kind, audit=audit)
    try:
        stored = await target.write(
            row["storage_key"],
            chunks,
            max_bytes=stores.config.max_bytes,
            expected_sha256=spec.sha256,
            content_type=spec.content_type,
        )
    except BaseException:
        await _discard(db, stores, row)
        raise
    return await _finish(db, row, stored.size_bytes, stored.sha256, role, audit)


async def begin_presigned_upload(
    db: Database, stores: ObjectStores, *, run_id: UUID, spec: UploadSpec, audit: AuditContext
) -> tuple[Record, PresignedRequest]:
    """A pending artifact and a pre-signed PUT URL for its bytes (S3 store only)."""
    target = stores.current
    probe = target.presign_upload(new_object_key(), content_type=spec.content_type)
    if probe is None:
        raise Conflict(
            "pre-signed uploads need the S3 store; upload the file through the api instead",
            details={"storage": target.kind},
        )
    row = await _begin(
        db, run_id=run_id, spec=spec, storage=target.kind, audit=audit,
        upload_expires_at=probe.expires_at,
    )  # fmt: skip
    presigned = target.presign_upload(row["storage_key"], content_type=spec.content_type)
    assert presigned is not None
    return row, presigned


async def complete_presigned_upload(
    db: Database, stores: ObjectStores, *, artifact_id: UUID, role: str, audit: AuditContext
) -> Record:
    """Checks the object uploaded to the pre-signed URL (size limit, sha256 if announced)
    and marks the artifact ready; a wrong object is deleted."""
    async with db.acquire() as conn:
        row = await store.fetch_artifact(conn, artifact_id=artifact_id)
    if row is None:
        raise NotFound("artifact not found")
    if row["status"] == "ready":
        return row
    stored = await verify_object(
        stores.of(row["storage"]),
        row["storage_key"],
        max_bytes=stores.config.max_bytes,
        expected_sha256=row["sha256"],
    )
    return await _finish(db, row, stored.size_bytes, stored.sha256, role, audit)


async def discard_stale_uploads(
    db: Database, stores: ObjectStores, *, older_than: timedelta, now: datetime, limit: int = 500
) -> int:
    """Removes pending artifacts whose upload never finished (for a periodic sweep)."""
    async with db.acquire() as conn:
        rows = await store.fetch_stale_pending(conn, created_before=now - older_than, limit=limit)
    for row in rows:
        await _discard(db, stores, row)
    return len(rows)


# Changes ---------------------------------------------------------------------------------------


async def delete_artifact(
    db: Database, stores: ObjectStores, *, artifact_id: UUID, role: str, audit: AuditContext
) -> None:
    """Deletes the row (audited) and then its object; an object that cannot be deleted now is
    logged, never resurrected."""
    async with db.transaction() as conn:
        row = await store.lock_artifact(conn, artifact_id=artifact_id)
        if row is None:
            raise NotFound("artifact not found")
        await store.delete_artifact_row(conn, artifact_id=artifact_id)
        await _audit(conn, row, role, audit, "artifact.deleted", before=_summary(row))
    try:
        await stores.of(row["storage"]).delete(row["storage_key"])
    except Exception:
        log.warning("artifact object left behind", extra={"storage_key": row["storage_key"]})


async def approve_artifact(
    db: Database, *, artifact_id: UUID, role: str, audit: AuditContext
) -> Record:
    """Records the owner's approval (once; approving again answers the artifact as it is)."""
    async with db.transaction() as conn:
        row = await store.lock_artifact(conn, artifact_id=artifact_id)
        if row is None:
            raise NotFound("artifact not found")
        if row["status"] != "ready":
            raise Conflict("the upload has not finished", details={"status": row["status"]})
        if row["approved_at"] is not None:
            return row
        approved = await store.set_approved(
            conn, artifact_id=artifact_id, approved_by=audit.actor_id
        )
        await _audit(conn, approved, role, audit, "artifact.approved", after={"approved": True})
    return approved


def _summary(row: Record) -> dict[str, Any]:
    return {k: row[k] for k in ("run_id", "name", "type", "size_bytes", "sha256")}


async def _audit(
    conn: Any, row: Record, role: str, audit: AuditContext, action: str, **change: Any
) -> None:
    await audit_store.insert_audit_event(
        conn,
        project_id=row["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="artifact",
        entity_id=row["id"],
        request_id=audit.request_id,
        **change,
    )
