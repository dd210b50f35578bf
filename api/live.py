"""Live telemetry: ``GET /telemetry/stream`` (SSE), ``GET /ws`` (WebSocket), ``POST /ws/ticket``.

Every stream is authorised when it opens and again whenever a revocation event names its user
(membership, role, session or token change): a stream that lost access closes within a second.
Event ids / cursors are commit positions (see ``api.broker.StreamCursor`` and ADR 0007).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import orjson
from quart import Blueprint, Response, current_app, request, websocket
from quart_auth import current_user

from api.broker import (
    GAP_FILL_MAX_POINTS,
    Broker,
    LiveStream,
    Revocations,
    Subscription,
    catch_up,
)
from api.context import principal as current_principal
from api.errors import app_error_response
from api.policy import public, user
from api.responses import json_response
from api.security import allowed_origins
from api.state import Services, services
from api.subscriptions import ControlEvents
from core import identity
from core.errors import AppError, Forbidden, InvalidInput, Unauthenticated
from core.json import dumps
from core.principal import Principal
from core.redis_keys import revocation_channel, ws_ticket_key
from core.stores import telemetry as store
from core.telemetry_read import (
    MIN_TS_US,
    LiveFrame,
    Position,
    StreamCursor,
    frames_of,
    parse_uuid_list,
    principal_is_live,
    resolve_target,
)

log = logging.getLogger("etp.api.live")
bp = Blueprint("live", __name__)

KEEPALIVE_S = 15.0
TICKET_TTL_S = 30
WS_MAX_SUBSCRIPTIONS = 50


# Process wiring (called from api.app) ---------------------------------------------------------


def start_live(state: Services, events: ControlEvents) -> None:
    """Creates the broker and listens for revocations (before ``events.start()``)."""

    async def stamp(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, LiveFrame]]:
        keys = {(f["sensor_id"], p[0]): None for _, f in batch for p in f["points"]}
        async with state.database.acquire() as conn:
            rows = await store.stamp_points(
                conn, sensor_ids=[k[0] for k in keys], ts_us=[k[1] for k in keys]
            )
        by_key = {(str(r["sensor_id"]), r["ts_us"]): r for r in rows}
        merged: dict[tuple[str, str], list[Any]] = {}
        for channel, f in batch:
            for p in f["points"]:
                row = by_key.get((f["sensor_id"], p[0]))
                if row is not None:
                    merged.setdefault((channel, f["sensor_id"]), []).append(row)
        return [(ch, frame) for (ch, _), rows in merged.items() for frame in frames_of(rows)]

    async def gap_fill(channel: str, positions: dict[str, Position], floor_us: int) -> list[Any]:
        kind, _, object_id = channel.removeprefix("live:").partition(":")
        async with state.database.acquire() as conn:
            if kind == "session":
                sensors = await conn.fetch(
                    "SELECT rs.sensor_id FROM capture_sessions c JOIN run_sensors rs "
                    "ON rs.run_id = c.run_id WHERE c.id = $1",
                    UUID(object_id),
                )
                sensor_ids = [str(r["sensor_id"]) for r in sensors]
            else:
                sensor_ids = [object_id]
            frames = []
            for sensor in sensor_ids:
                after = positions.get(sensor, (floor_us, MIN_TS_US))
                rows = await store.fetch_tail(
                    conn,
                    sensor_id=UUID(sensor),
                    after_r_us=after[0],
                    after_ts_us=after[1],
                    run_id=None,
                    capture_session_id=UUID(object_id) if kind == "session" else None,
                    limit=GAP_FILL_MAX_POINTS,
                )
                frames.extend(frames_of(rows))
        return frames

    broker = Broker(state.settings.redis_url, stamp=stamp, gap_fill=gap_fill)
    broker.start()
    revocations = Revocations()
    events.on(revocation_channel(), revocations.handle_message)
    state.extras["live_broker"] = broker
    state.extras["live_revocations"] = revocations


async def stop_live(state: Services) -> None:
    broker = state.extras.pop("live_broker", None)
    if broker is not None:
        await broker.stop()


def _broker() -> Broker:
    return services().extras["live_broker"]


def _revocations() -> Revocations:
    return services().extras["live_revocations"]


def _physical(raw: str | None) -> bool:
    if raw not in (None, "", "raw", "physical"):
        raise InvalidInput("value must be raw or physical", details={"field": "value"})
    return raw == "physical"


def _uuid(raw: str | None, name: str) -> UUID | None:
    return parse_uuid_list(raw, name)[0] if raw else None


# SSE ------------------------------------------------------------------------------------------


def _sse(data: Any, *, event: str | None = None, event_id: str | None = None) -> bytes:
    head = (f"id: {event_id}\n" if event_id else "") + (f"event: {event}\n" if event else "")
    return head.encode() + b"data: " + dumps(data) + b"\n\n"


@bp.get("/telemetry/stream")
@user
async def stream() -> Response:
    """Server-sent events of the named sensors / run / capture session, resumable by id."""
    caller = current_principal()
    args = request.args
    async with services().database.acquire() as conn:
        target = await resolve_target(
            conn,
            user_id=caller.user_id,
            sensor_ids=parse_uuid_list(args.get("sensor_ids"), "sensor_ids"),
            run_id=_uuid(args.get("run_id"), "run_id"),
            capture_session_id=_uuid(args.get("capture_session_id"), "capture_session_id"),
        )
    names = [str(s) for s in target.sensor_ids]
    last_id = request.headers.get("Last-Event-ID") or args.get("last_event_id")
    cursor = (
        StreamCursor.decode(last_id, names)
        if last_id
        else StreamCursor(floor_us=_broker().clock_us())
    )
    sub = Subscription("stream", target, _physical(args.get("value")), cursor)
    db, broker, revocations = services().database, _broker(), _revocations()
    live = LiveStream(caller, db, subs={"stream": sub})
    revocations.add(live)
    try:
        await broker.subscribe(live.queue, sub.channels)
    except AppError:
        revocations.remove(live)
        raise
    keepalive_s = float(current_app.config.get("ETP_SSE_KEEPALIVE_S", KEEPALIVE_S))

    async def body() -> AsyncIterator[bytes]:
        queue = live.queue
        try:
            yield _sse({"sensor_ids": names}, event="ready", event_id=cursor.encode())
            for _round in range(5 if last_id else 0):
                async for sensor, points in catch_up(sub, db):
                    yield _sse(
                        sub.data(sensor, points, 0), event="points", event_id=cursor.encode()
                    )
                if not queue.dropped:
                    break
                queue.dropped = 0  # coalesced while catching up: read those from the database
            while True:
                if queue.closed is not None or live.revoked:
                    code = queue.closed or "access_revoked"
                    yield _sse({"code": code}, event="error")
                    return
                items, dropped = queue.take()
                if not items and not dropped:
                    await queue.wait(keepalive_s)
                    if not queue.ready.is_set():
                        yield b": keep-alive\n\n"
                    continue
                for channel, frame in items:
                    points = sub.accept(channel, frame)
                    if points:
                        data = sub.data(frame.sensor_id, points, dropped)
                        dropped = 0
                        yield _sse(data, event="points", event_id=cursor.encode())
                if dropped:
                    yield _sse({"dropped": dropped}, event="dropped")
        finally:
            revocations.remove(live)
            await broker.unsubscribe(live.queue, sub.channels)

    response = Response(body(), content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # a live stream has no deadline
    return response


# WebSocket ------------------------------------------------------------------------------------


@bp.post("/ws/ticket")
@user
async def ws_ticket() -> Response:
    """A single-use ticket (30 s) for ``/ws?ticket=`` — for clients without the cookie."""
    caller = current_principal()
    ticket = secrets.token_urlsafe(32)
    value = {
        "user_id": caller.user_id,
        "email": caller.email,
        "display_name": caller.display_name,
        "via": caller.via,
        "session_id": caller.session_id,
        "token_id": caller.token_id,
    }
    redis = services().redis
    assert redis is not None
    await redis.set(ws_ticket_key(ticket), dumps(value), ex=TICKET_TTL_S)
    return json_response({"ticket": ticket, "expires_in": TICKET_TTL_S}, status=201)


async def _ws_principal() -> Principal:
    state = services()
    ticket = websocket.args.get("ticket")
    if ticket:
        assert state.redis is not None
        raw = await state.redis.getdel(ws_ticket_key(ticket))
        if raw is None:
            raise Unauthenticated("the ticket is unknown, used or expired")
        fields = orjson.loads(raw)
        caller = Principal(
            user_id=UUID(fields["user_id"]),
            email=fields["email"],
            display_name=fields["display_name"],
            via=fields["via"],
            session_id=UUID(fields["session_id"]) if fields["session_id"] else None,
            token_id=UUID(fields["token_id"]) if fields["token_id"] else None,
        )
        async with state.database.acquire() as conn:
            if not await principal_is_live(conn, caller):
                raise Unauthenticated("your session or token has ended")
        return caller
    origin = websocket.headers.get("Origin")
    if origin is not None and origin not in allowed_origins(state.settings):
        raise Forbidden("cross-origin WebSocket refused", details={"origin": origin})
    secret = current_user.auth_id
    if secret is None:
        raise Unauthenticated("sign in, or connect with ?ticket= from POST /ws/ticket")
    async with state.database.acquire() as conn:
        resolved = await identity.resolve_session(conn, secret=secret, settings=state.settings)
    if resolved is None:
        raise Unauthenticated("your session has ended; sign in again")
    return resolved


def _ws_target_args(channel: Any) -> dict[str, Any]:
    kind, _, raw_id = str(channel).partition(":")
    key = {"sensor": "sensor_ids", "run": "run_id", "session": "capture_session_id"}.get(kind)
    object_id = _uuid(raw_id, "channel") if raw_id else None
    if key is None or object_id is None:
        raise InvalidInput(
            "channel must be sensor:<id>, run:<id> or session:<id>", details={"field": "channel"}
        )
    return {key: [object_id] if key == "sensor_ids" else object_id}


async def _ws_send(message: dict[str, Any]) -> None:
    await websocket.send(dumps(message).decode())


async def _ws_command(live: LiveStream, message: Any) -> None:
    """Handles one client message; problems answer as error messages, never disconnects."""
    kind = message.get("type") if isinstance(message, dict) else None
    channel = message.get("channel") if isinstance(message, dict) else None
    if kind == "ping":
        await _ws_send({"type": "pong"})
    elif kind == "unsubscribe" and channel in live.subs:
        sub = live.subs.pop(channel)
        await _broker().unsubscribe(live.queue, sub.channels)
        await _ws_send({"type": "unsubscribed", "channel": channel})
    elif kind == "subscribe" and isinstance(channel, str):
        if channel in live.subs or len(live.subs) >= WS_MAX_SUBSCRIPTIONS:
            raise InvalidInput("already subscribed, or too many subscriptions")
        async with services().database.acquire() as conn:
            target = await resolve_target(
                conn, user_id=live.caller.user_id, **_ws_target_args(channel)
            )
        since = message.get("since")
        names = [str(s) for s in target.sensor_ids]
        cursor = (
            StreamCursor.decode(str(since), names)
            if since
            else StreamCursor(floor_us=_broker().clock_us())
        )
        sub = Subscription(channel, target, _physical(message.get("value")), cursor)
        await _broker().subscribe(live.queue, sub.channels)
        live.subs[channel] = sub
        await _ws_send({"type": "subscribed", "channel": channel, "cursor": cursor.encode()})
        if since:
            async for sensor, points in catch_up(sub, services().database):
                await _ws_send(
                    {"channel": channel, **sub.data(sensor, points, 0), "cursor": cursor.encode()}
                )
    else:
        raise InvalidInput("send {type: subscribe|unsubscribe|ping, channel, since?}")


def _channel_of(raw: Any) -> Any:
    with contextlib.suppress(Exception):
        return orjson.loads(raw).get("channel")
    return None


async def _ws_pump(live: LiveStream) -> None:
    """Queue → socket; ends when the queue closes (too slow, revoked, shutdown)."""
    while True:
        await live.queue.wait(KEEPALIVE_S)
        for name in live.revoked:
            sub = live.subs.pop(name, None)
            if sub is not None:
                await _broker().unsubscribe(live.queue, sub.channels)
                await _ws_send({"type": "error", "code": "access_revoked", "channel": name})
        live.revoked.clear()
        if live.queue.closed is not None:
            await _ws_send({"type": "error", "code": live.queue.closed})
            return
        items, dropped = live.queue.take()
        for channel, frame in items:
            for sub in list(live.subs.values()):
                points = sub.accept(channel, frame)
                if points:
                    data = sub.data(frame.sensor_id, points, dropped)
                    dropped = 0
                    await _ws_send({"channel": sub.name, **data, "cursor": sub.cursor.encode()})
        if dropped:
            await _ws_send({"type": "dropped", "dropped": dropped})


@bp.websocket("/ws")
@public  # authenticates itself: the session cookie (Origin checked) or a single-use ticket
async def ws() -> Response | None:
    """One socket, many channels: subscribe/unsubscribe/ping messages, frames of points."""
    try:
        caller = await _ws_principal()
    except AppError as exc:
        return app_error_response(exc)
    await websocket.accept()
    live = LiveStream(caller, services().database)
    _revocations().add(live)
    pump = asyncio.create_task(_ws_pump(live))
    receive: asyncio.Future[Any] | None = None
    try:
        while not pump.done():
            receive = asyncio.ensure_future(websocket.receive())
            await asyncio.wait({receive, pump}, return_when=asyncio.FIRST_COMPLETED)
            if not receive.done():
                receive.cancel()
                break
            try:
                await _ws_command(live, orjson.loads(receive.result()))
            except orjson.JSONDecodeError:
                await _ws_send({"type": "error", "code": "invalid_input", "message": "not JSON"})
            except AppError as exc:
                await _ws_send(
                    {
                        "type": "error",
                        "code": exc.code,
                        "message": exc.message,
                        "channel": _channel_of(receive.result()),
                    }
                )
        await websocket.close(4403 if live.queue.closed == "access_revoked" else 1000)
    finally:
        for task in (pump, receive):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        _revocations().remove(live)
        for sub in live.subs.values():
            await _broker().unsubscribe(live.queue, sub.channels)
    return None
