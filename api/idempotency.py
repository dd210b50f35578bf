"""``Idempotency-Key`` for create and transition routes: ``@idempotent`` under the policy.

    @bp.post("/experiments/<uuid:experiment_id>/runs")
    @project("run.write")
    @idempotent
    @validate_request(RunIn)
    async def create_run(...): ...

A key is scoped to the caller, the route (endpoint) and the key itself, and lives 24 hours.
The request it first came with (method, path, query and body) is fingerprinted:

- same key, same request, answered: the stored status and body are replayed
  (``Idempotent-Replayed: true``);
- same key, another request: 422;
- same key while the first request is still being answered: 409 (retry later);
- no header: the route runs as usual.

Only successful (2xx) answers are stored. A failed request releases its key, so a retry is
decided afresh against the current state (ADR 0004). Secrets shown once (a sensor or API token,
a webhook secret) are never stored: a replay answers with them set to null and lists them in
``redacted`` — the client knows the object exists and rotates to get a new secret.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

import orjson
from quart import Response, make_response, request

from api.context import principal
from api.state import services
from core.errors import Conflict, InvalidInput
from core.stores import idempotency as store

log = logging.getLogger("etp.api")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, like a UUID or a ULID

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Decision = Literal["replay", "mismatch", "in_progress"]


def decide(*, stored_hash: bytes, stored_state: str, request_hash: bytes) -> Decision:
    """What to answer when the key is already held by an earlier request."""
    if bytes(stored_hash) != request_hash:
        return "mismatch"
    return "replay" if stored_state == "done" else "in_progress"


def fingerprint(method: str, full_path: str, body: bytes) -> bytes:
    """SHA-256 of what makes two requests "the same" (the path includes the query)."""
    digest = hashlib.sha256()
    for part in (method.encode(), full_path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _key_from_header() -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise InvalidInput(
            f"{HEADER} must be 1 to 255 visible ASCII characters", details={"field": HEADER}
        )
    return raw


def _replay(row: Any) -> Response:
    response = Response(
        bytes(row["response_body"]), status=row["status_code"], content_type="application/json"
    )
    response.headers[REPLAYED_HEADER] = "true"
    return response


async def _claim_or_answer(
    scope: str, route: str, key: str, request_hash: bytes
) -> Response | None:
    """Claims the key for this request (None) or answers from the earlier request."""
    db = services().database
    for _ in range(3):  # the holder may release the key between our two statements
        async with db.acquire() as conn:
            if await store.claim_key(
                conn, scope=scope, route=route, key=key, request_hash=request_hash
            ):
                return None
            row = await store.fetch_key(conn, scope=scope, route=route, key=key)
        if row is None:
            continue
        decision = decide(
            stored_hash=row["request_hash"], stored_state=row["state"], request_hash=request_hash
        )
        if decision == "replay":
            return _replay(row)
        if decision == "mismatch":
            raise InvalidInput(
                f"this {HEADER} was already used with a different request; use a new key",
                details={"field": HEADER, "reason": "idempotency_key_reused"},
            )
        raise Conflict(
            f"a request with this {HEADER} is still being processed; retry later",
            details={"field": HEADER, "reason": "idempotency_key_in_progress"},
        )
    raise Conflict(
        f"the {HEADER} is contended; retry later",
        details={"field": HEADER, "reason": "idempotency_key_in_progress"},
    )


async def _release(scope: str, route: str, key: str) -> None:
    try:
        async with services().database.acquire() as conn:
            await store.release_key(conn, scope=scope, route=route, key=key)
    except Exception:  # the key then goes stale and is taken over by a later retry
        log.warning("could not release an idempotency key", exc_info=True)


SECRET_FIELDS = ("token", "secret")


def redact(body: bytes) -> bytes:
    """The stored copy of an answer, without the secrets it showed once."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(document, dict) or not any(document.get(f) for f in SECRET_FIELDS):
        return body
    hidden = [f for f in SECRET_FIELDS if document.get(f)]
    return orjson.dumps({**document, **dict.fromkeys(hidden), "redacted": hidden})


async def _complete(scope: str, route: str, key: str, response: Response) -> None:
    try:
        async with services().database.acquire() as conn:
            await store.complete_key(
                conn,
                scope=scope,
                route=route,
                key=key,
                status_code=response.status_code,
                response_body=redact(await response.get_data(as_text=False)),
            )
    except Exception:  # the change is committed: answer it; the key goes stale instead
        log.warning("could not record an idempotent answer", exc_info=True)


def idempotent(fn: F) -> F:
    """Honours ``Idempotency-Key`` on the decorated route (see the module docstring)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = _key_from_header()
        if key is None:
            return await fn(*args, **kwargs)
        scope = str(principal().user_id)
        route = request.endpoint or request.path
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        request_hash = fingerprint(request.method, request.full_path, body)
        earlier = await _claim_or_answer(scope, route, key, request_hash)
        if earlier is not None:
            return earlier
        try:
            response = await make_response(await fn(*args, **kwargs))
        except BaseException:
            await _release(scope, route, key)
            raise
        if isinstance(response, Response) and 200 <= response.status_code < 300:
            await _complete(scope, route, key, response)
        else:
            await _release(scope, route, key)
        return response

    return cast(F, wrapper)
