"""Resumable downloads: bytes go to ``<dest>.part``; a new attempt asks for the rest with
``Range`` when the server supports it (206), else starts over; ``dest`` appears complete or
not at all."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from etp_client.errors import ConnectionFailed, EtpError
from etp_client.transport import Transport, decode_json

CHUNK_BYTES = 256 * 1024

# progress(done_bytes, total_bytes or None when the server does not say)
Progress = Callable[[int, int | None], None]


class ExportQueued(EtpError):
    """The server answered 202: too big to stream, it became an export job (``job``)."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"the export became job {job.get('id')}", code="export_queued")
        self.job = job


def _total(response: httpx.Response, offset: int) -> int | None:
    if response.status_code == 206:
        # Content-Range: bytes 100-999/1000
        _, _, size = response.headers.get("Content-Range", "").partition("/")
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def download(
    transport: Transport,
    path: str,
    dest: Path,
    *,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    resume: bool = True,
) -> Path:
    """Streams ``GET path`` into ``dest``; resumes a ``.part`` file left by an earlier try."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if not resume:
        part.unlink(missing_ok=True)
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with transport.stream("GET", path, params=params, headers=headers) as response:
                if response.status_code == 202:
                    response.read()
                    raise ExportQueued(decode_json(response) or {})
                if response.status_code == 206:
                    mode = "ab"
                else:  # 200: the whole body again (no range support, or a fresh start)
                    mode, offset = "wb", 0
                total = _total(response, offset)
                done = offset
                if progress:
                    progress(done, total)
                with part.open(mode) as out:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            part.replace(dest)
            return dest
        except ExportQueued:
            raise
        except EtpError as exc:
            if exc.status == 416 and offset:  # the .part already holds everything
                part.replace(dest)
                return dest
            raise
        except (httpx.TransportError, httpx.StreamError) as exc:
            failures += 1
            if failures >= transport.retry.max_attempts:
                raise ConnectionFailed(
                    f"download of {path} failed after {failures} tries: {exc}",
                    code="connection_failed",
                ) from exc
            transport.sleep(transport.retry.delay_s(failures))
