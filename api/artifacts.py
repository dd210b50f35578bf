"""Artifacts: upload (``POST /runs/{rid}/artifacts``, the raw body or multipart, streamed), list,
read, download with ranges, pre-signed S3 transfers, delete (editor+) and approve (owner).

Uploads stream ``request.body`` chunks straight into the object store. Quart reads a body
eagerly and caps it at the app-wide ``MAX_CONTENT_LENGTH``; ``install_upload_streaming(app)``
lifts that cap for the upload route and makes the receiving side wait while more than
``HIGH_WATER_BYTES`` are unread, so memory stays constant and a slow store slows the client
down (TCP backpressure) instead of filling memory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Generator
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Quart, Request, Response, request
from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body
from quart_schema import validate_request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Event, File, MultipartDecoder
from werkzeug.sansio.multipart import Field as FormField

from api.context import audit_context, project_role
from api.errors import error_response
from api.pagination import decode_time_cursor, encode_cursor, page_limit
from api.policy import project
from api.responses import json_response
from api.state import services
from core import artifacts as domain
from core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from core.object_store import ArtifactSettings, ObjectStores
from core.stores import artifacts as store

bp = Blueprint("artifacts", __name__)
CHUNK_TIMEOUT_S = 60.0
HIGH_WATER_BYTES = 1024 * 1024
MULTIPART_SLACK_BYTES = 64 * 1024
FORM_FIELDS = ("name", "sha256", "type", "content_type", "metadata")
_UPLOAD_PATH = re.compile(r"/api/v1/runs/[0-9A-Fa-f-]{32,36}/artifacts/?")
ARTIFACT_FIELDS = (
    "id", "run_id", "project_id", "name", "type", "size_bytes", "sha256", "content_type",
    "metadata", "status", "storage", "approved_by", "approved_at", "created_by", "created_at",
    "upload_expires_at",
)  # fmt: skip


def object_stores() -> ObjectStores:
    """The process's stores, built from the environment on first use."""
    state = services()
    stores = state.extras.get("object_stores")
    if stores is None:
        stores = state.extras["object_stores"] = ObjectStores(
            state.settings, ArtifactSettings.from_env()
        )
    return stores


def artifact_json(row: Any) -> dict[str, Any]:
    item = {f: row[f] for f in ARTIFACT_FIELDS}
    item["content_url"] = f"/api/v1/artifacts/{row['id']}/content"
    return item


# Streaming the request body --------------------------------------------------------------------


class StreamingBody(Body):
    """A body that holds at most ``HIGH_WATER_BYTES`` unread; the total is the handler's to
    enforce (the artifact limit, while streaming)."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None):
        super().__init__(None, None)
        self._room = asyncio.Event()
        self._room.set()
        self._whole = False

    def append(self, data: bytes) -> None:
        super().append(data)
        if not self._whole and len(self._data) >= HIGH_WATER_BYTES:
            self._room.clear()

    async def __anext__(self) -> bytes:
        data = await super().__anext__()
        self._room.set()
        return data

    def __await__(self) -> Generator[Any, None, Any]:
        self._whole = True  # read whole: no backpressure (never so on the upload route)
        self._room.set()
        return super().__await__()

    async def wait_for_room(self) -> None:
        await self._room.wait()


class UploadRequest(Request):
    """Gives the artifact upload route a ``StreamingBody``."""

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any):
        super().__init__(method, scheme, path, *args, **kwargs)
        if method == "POST" and _UPLOAD_PATH.fullmatch(path):
            self.body = StreamingBody(self.content_length, None)


class StreamingHTTPConnection(ASGIHTTPConnection):
    """Quart's connection, but it receives more of a streaming body only when there is room."""

    async def handle_messages(self, request: Request, receive: Any) -> None:
        while True:
            if isinstance(request.body, StreamingBody):
                await request.body.wait_for_room()
            message = await receive()
            if message["type"] == "http.request":
                request.body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    request.body.set_complete()
            elif message["type"] == "http.disconnect":
                return


def install_upload_streaming(app: Quart) -> None:
    """Lets artifact uploads stream past ``MAX_CONTENT_LENGTH`` with constant memory."""
    app.request_class = UploadRequest
    app.asgi_http_class = StreamingHTTPConnection


async def _next_chunk(body: Body) -> bytes | None:
    try:
        return await body.__anext__()
    except StopAsyncIteration:
        return None


async def _body_chunks() -> AsyncIterator[bytes]:
    body = request.body
    while True:
        try:
            chunk = await asyncio.wait_for(_next_chunk(body), CHUNK_TIMEOUT_S)
        except TimeoutError:
            raise InvalidInput(
                f"the upload stalled for {CHUNK_TIMEOUT_S:.0f} s", details={"field": "body"}
            ) from None
        except RequestEntityTooLarge:
            limit = request.max_content_length
            raise PayloadTooLarge(
                f"this server takes request bodies of at most {limit} bytes",
                details={"limit_bytes": limit},
            ) from None
        if chunk is None:
            return
        if chunk:
            yield chunk


class MultipartFile:
    """The first file part of a ``multipart/form-data`` body, streamed, and the text fields
    sent before it (at most ``MULTIPART_SLACK_BYTES`` of them)."""

    def __init__(self, boundary: bytes, chunks: AsyncIterator[bytes]):
        self._decoder = MultipartDecoder(boundary)
        self._chunks = chunks

    async def _event(self) -> Event:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError:
                raise InvalidInput("the multipart body is malformed") from None
            if event is not NEED_DATA:
                return event
            self._decoder.receive_data(await anext(self._chunks, None))

    async def start(self) -> tuple[dict[str, str], File]:
        fields: dict[str, str] = {}
        current: str | None = None
        value = bytearray()
        while True:
            event = await self._event()
            if isinstance(event, File):
                return fields, event
            if isinstance(event, Epilogue):
                raise InvalidInput("the multipart body has no file part", details={"field": "file"})
            if isinstance(event, FormField):
                current, value = event.name, bytearray()
            elif isinstance(event, Data) and current is not None:
                value += event.data
                if len(value) > MULTIPART_SLACK_BYTES:
                    raise InvalidInput("a form field is too long", details={"field": current})
                if not event.more_data:
                    fields[current] = value.decode("utf-8", "replace")

    async def data(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._event()
            if isinstance(event, Data):
                if event.data:
                    yield event.data
                if not event.more_data:
                    return


def _metadata(raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(
            "metadata must be a JSON object", details={"field": "metadata"}
        ) from None


# Routes ------------------------------------------------------------------------------------------


@bp.post("/runs/<uuid:run_id>/artifacts")
@project("artifact.write")
async def upload_artifact(run_id: UUID) -> Response:
    """The file as the raw body (``?name=&sha256=&type=&content_type=&metadata=``, the media
    type from ``Content-Type``) or as the first file of a multipart form (fields before it may
    carry the same values). Streams to the store while hashing; 413 past the artifact limit,
    422 when ``sha256`` does not match (nothing is kept). Not idempotent: retry after a
    failure, or send ``sha256`` and look for the artifact first."""
    stores = object_stores()
    limit = stores.config.max_bytes
    multipart = request.mimetype == "multipart/form-data"
    declared = request.content_length
    if declared is not None and declared > limit + (MULTIPART_SLACK_BYTES if multipart else 0):
        raise PayloadTooLarge(
            f"the file is larger than the artifact size limit of {limit} bytes",
            details={"limit_bytes": limit, "size_bytes": declared},
        )
    values: dict[str, str | None] = {k: request.args.get(k) for k in FORM_FIELDS}
    chunks = _body_chunks()
    if multipart:
        boundary = request.mimetype_params.get("boundary")
        if not boundary:
            raise InvalidInput("multipart/form-data needs a boundary", details={"field": "body"})
        form = MultipartFile(boundary.encode("latin-1"), chunks)
        fields, file = await form.start()
        values = {k: values[k] if values[k] is not None else fields.get(k) for k in FORM_FIELDS}
        values["name"] = values["name"] or file.filename
        values["content_type"] = values["content_type"] or file.headers.get("Content-Type")
        chunks = form.data()
    else:
        values["content_type"] = values["content_type"] or request.headers.get("Content-Type")
    spec = domain.clean_spec(
        name=values["name"],
        artifact_type=values["type"],
        content_type=values["content_type"],
        sha256=values["sha256"],
        metadata=_metadata(values["metadata"]),
    )
    row = await domain.upload_artifact(
        services().database,
        stores,
        run_id=run_id,
        spec=spec,
        chunks=chunks,
        role=project_role(),
        audit=audit_context(),
    )
    return json_response(artifact_json(row), status=201)


class PresignedUploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=domain.NAME_MAX)
    type: str | None = None
    content_type: str | None = None
    sha256: str | None = Field(default=None, description="checked when the upload completes")
    metadata: dict[str, Any] | None = None


@bp.post("/runs/<uuid:run_id>/artifacts/uploads")
@project("artifact.write")
@validate_request(PresignedUploadIn)
async def begin_presigned_upload(run_id: UUID, data: PresignedUploadIn) -> Response:
    """S3 store only: a pending artifact and a pre-signed ``PUT`` URL for its bytes; then
    ``POST /artifacts/{aid}/complete`` checks size and sha256 and makes it ready."""
    spec = domain.clean_spec(
        name=data.name,
        artifact_type=data.type,
        content_type=data.content_type,
        sha256=data.sha256,
        metadata=data.metadata,
    )
    row, upload = await domain.begin_presigned_upload(
        services().database, object_stores(), run_id=run_id, spec=spec, audit=audit_context()
    )
    return json_response(
        {
            "artifact": artifact_json(row),
            "upload": {
                "url": upload.url,
                "method": upload.method,
                "headers": upload.headers,
                "expires_at": upload.expires_at,
            },
        },
        status=201,
    )


@bp.post("/artifacts/<uuid:artifact_id>/complete")
@project("artifact.write")
async def complete_presigned_upload(artifact_id: UUID) -> Response:
    row = await domain.complete_presigned_upload(
        services().database,
        object_stores(),
        artifact_id=artifact_id,
        role=project_role(),
        audit=audit_context(),
    )
    return json_response(artifact_json(row))


@bp.get("/runs/<uuid:run_id>/artifacts")
@project("artifact.read")
async def list_artifacts(run_id: UUID) -> Response:
    """Newest first; ``status=ready`` (default), ``pending`` or ``all``."""
    status = request.args.get("status", "ready")
    statuses = {"ready": ("ready",), "pending": ("pending",), "all": ("ready", "pending")}
    if status not in statuses:
        raise InvalidInput("status must be ready, pending or all", details={"field": "status"})
    limit = page_limit()
    after = decode_time_cursor()
    async with services().database.acquire() as conn:
        rows = await store.list_artifacts(
            conn, run_id=run_id, statuses=statuses[status], after=after, limit=limit + 1
        )
    items = rows[:limit]
    last = items[-1] if items else None
    return json_response(
        {
            "items": [artifact_json(r) for r in items],
            "next_cursor": (
                encode_cursor([last["created_at"].isoformat(), last["id"]])
                if last is not None and len(rows) > limit
                else None
            ),
        }
    )


async def _artifact(artifact_id: UUID, *, ready: bool = False) -> Any:
    async with services().database.acquire() as conn:
        row = await store.fetch_artifact(conn, artifact_id=artifact_id)
    if row is None:
        raise NotFound("artifact not found")
    if ready and row["status"] != "ready":
        raise Conflict("the upload has not finished", details={"status": row["status"]})
    return row


@bp.get("/artifacts/<uuid:artifact_id>")
@project("artifact.read")
async def get_artifact(artifact_id: UUID) -> Response:
    return json_response(artifact_json(await _artifact(artifact_id)))


@bp.get("/artifacts/<uuid:artifact_id>/content")
@project("artifact.read")
async def download_artifact(artifact_id: UUID) -> Response:
    """The bytes as an attachment (a safe file name derived from the display name); a single
    ``Range`` gets 206, an unsatisfiable one 416; ``If-Range`` takes the ETag (the sha256)."""
    row = await _artifact(artifact_id, ready=True)
    size, etag = row["size_bytes"], f'"{row["sha256"]}"'
    header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        header = None
    try:
        span = domain.parse_byte_range(header, size)
    except ValueError:
        response = error_response(
            416, "range_not_satisfiable", f"the file has {size} bytes", {"size_bytes": size}
        )
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    start, length = (0, size) if span is None else (span[0], span[1] - span[0] + 1)
    chunks = object_stores().of(row["storage"]).read(row["storage_key"], start=start, length=length)
    first = await anext(chunks, b"")  # a missing object is a JSON error, not a cut download

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    response = Response(body(), status=206 if span else 200, content_type=row["content_type"])
    response.headers["Content-Length"] = str(length)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["ETag"] = etag
    response.headers["Content-Disposition"] = domain.content_disposition(row["name"])
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-cache"
    if span:
        response.headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
    response.timeout = None  # big files take longer than Quart's default response timeout
    return response


@bp.get("/artifacts/<uuid:artifact_id>/download-url")
@project("artifact.read")
async def download_url(artifact_id: UUID) -> Response:
    """S3 store only: a pre-signed ``GET`` URL (attachment, safe file name)."""
    row = await _artifact(artifact_id, ready=True)
    stores = object_stores()
    url = stores.of(row["storage"]).presign_download(
        row["storage_key"],
        content_disposition=domain.content_disposition(row["name"]),
        content_type=row["content_type"],
    )
    if url is None:
        raise Conflict(
            "this artifact is in the local store; download it from content_url",
            details={"storage": row["storage"]},
        )
    return json_response({"url": url, "expires_in_s": stores.config.s3_presign_expires_s})


@bp.delete("/artifacts/<uuid:artifact_id>")
@project("artifact.write")
async def delete_artifact(artifact_id: UUID) -> Response:
    await domain.delete_artifact(
        services().database,
        object_stores(),
        artifact_id=artifact_id,
        role=project_role(),
        audit=audit_context(),
    )
    return Response(status=204)


@bp.post("/artifacts/<uuid:artifact_id>/approve")
@project("artifact.approve")
async def approve_artifact(artifact_id: UUID) -> Response:
    row = await domain.approve_artifact(
        services().database, artifact_id=artifact_id, role=project_role(), audit=audit_context()
    )
    return json_response(artifact_json(row))
