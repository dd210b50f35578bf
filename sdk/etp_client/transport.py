"""HTTP plumbing shared by everything in the client: retries, idempotency keys, error mapping.

A request is retried on 429, 502, 503, 504, on 409 "idempotency key in progress" and on
transport errors (connection refused, timeouts, a dropped connection), with exponential
backoff and full jitter, waiting at least what ``Retry-After`` says. Every POST/PUT/PATCH carries
an ``Idempotency-Key`` made once per logical call and reused by its retries, so a retry after a
lost answer replays the first result instead of doing the work twice.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import orjson

from etp_client import __version__
from etp_client.errors import ConnectionFailed, error_from_response

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
KEYED_METHODS = frozenset({"POST", "PUT", "PATCH"})
USER_AGENT = f"etp-client/{__version__}"

Params = Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry; ``max_attempts`` counts the first try."""

    max_attempts: int = 6
    backoff_base_s: float = 0.25
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 120.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``attempt`` (1-based): full jitter, at least Retry-After."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        jittered = random.uniform(cap / 2, cap)
        if retry_after_s is None:
            return jittered
        # A little jitter on top so many clients told the same Retry-After do not stampede.
        honoured = min(retry_after_s, self.retry_after_max_s)
        return honoured + random.uniform(0, min(1.0, honoured * 0.1))


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def decode_json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text


def raise_for_error(response: httpx.Response) -> None:
    """Raises the matching ``EtpError`` for a 4xx/5xx answer."""
    if response.status_code < 400:
        return
    if not response.is_closed:
        response.read()
    raise error_from_response(
        response.status_code,
        decode_json(response),
        request_id=response.headers.get("X-Request-ID"),
        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
    )


def is_retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        response.read()
        body = decode_json(response)
        details = body.get("error", {}).get("details", {}) if isinstance(body, dict) else {}
        return isinstance(details, dict) and details.get("reason") == "idempotency_key_in_progress"
    return False


def api_base(url: str) -> str:
    """``http://host:port`` (or one ending in ``/api/v1``) to the API's base URL."""
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


class Transport:
    """A synchronous ``httpx.Client`` with the retry and error rules above."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = http or httpx.Client(
            base_url=api_base(url), headers=headers, timeout=timeout_s, follow_redirects=False
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        content: bytes | Callable[[], Iterable[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """Sends with retries (``retry`` overrides the policy for this call); returns the
        (read) response or raises ``EtpError``."""
        with self._send(
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotency_key=idempotency_key,
            retry=retry,
            stream=False,
        ) as response:
            return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (``None`` for 204)."""
        return decode_json(self.request(method, path, **kwargs))

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed response (retried until its headers arrive)."""
        with self._send(method, path, params=params, headers=headers, stream=True) as response:
            yield response

    @contextlib.contextmanager
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        json: Any = None,
        content: bytes | Callable[[], Iterable[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        retry: RetryPolicy | None = None,
        stream: bool,
    ) -> Iterator[httpx.Response]:
        method = method.upper()
        policy = retry or self.retry
        merged = dict(headers or {})
        if method in KEYED_METHODS:
            merged.setdefault("Idempotency-Key", idempotency_key or new_idempotency_key())
        body: bytes | Iterable[bytes] | None = None
        if json is not None:
            merged.setdefault("Content-Type", "application/json")
        attempt = 0
        while True:
            attempt += 1
            if json is not None:
                body = orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)
            elif callable(content):
                body = content()  # a fresh iterator per attempt (a file re-opened)
            else:
                body = content
            request = self.http.build_request(
                method, path, params=_clean(params), content=body, headers=merged
            )
            try:
                response = self.http.send(request, stream=True)
            except httpx.TransportError as exc:
                if attempt >= policy.max_attempts:
                    raise ConnectionFailed(
                        f"could not reach {self.url}: {exc.__class__.__name__}: {exc}",
                        code="connection_failed",
                    ) from exc
                self.sleep(policy.delay_s(attempt))
                continue
            try:
                if is_retryable(response) and attempt < policy.max_attempts:
                    delay = policy.delay_s(
                        attempt, parse_retry_after(response.headers.get("Retry-After"))
                    )
                    response.close()
                    self.sleep(delay)
                    continue
                raise_for_error(response)
                if not stream:
                    response.read()
                yield response
                return
            finally:
                response.close()


def _clean(params: Params) -> dict[str, Any] | None:
    """Drops ``None`` values; lists become comma lists, datetimes ISO-8601, UUIDs text."""
    if params is None:
        return None
    return {k: query_value(v) for k, v in params.items() if v is not None}


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(query_value(v) for v in value)
    return str(value)
