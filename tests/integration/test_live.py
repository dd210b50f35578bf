"""Live views over a real Hypercorn server (SSE through httpx) and Quart's WebSocket client."""

import asyncio
import contextlib
import socket
import time
import uuid

import httpx
import orjson
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from api.app import create_app
from api.broker import ClientQueue
from core.redis_keys import live_sensor_channel
from tests.integration.helpers import (
    add_member,
    create_project,
    create_sensor,
    register,
    send_points,
)

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def server(settings, ray_instance):
    """The real app behind Hypercorn on a free port: (app, base URL)."""
    app = create_app(settings)
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as probe:
        for _ in range(100):
            with contextlib.suppress(httpx.TransportError):
                if (await probe.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    yield app, base
    stop.set()
    await asyncio.wait_for(task, 10)


class Sse:
    """An SSE reader over an httpx stream: parsed events, one at a time."""

    def __init__(self, response: httpx.Response):
        self.lines = response.aiter_lines()

    async def next(self, timeout_s: float = 5.0) -> dict:
        event: dict = {}
        async with asyncio.timeout(timeout_s):
            async for line in self.lines:
                if line == "":
                    if "data" in event:
                        return event
                    event = {}
                elif line.startswith(":"):
                    event.setdefault("comments", []).append(line)
                else:
                    key, _, value = line.partition(": ")
                    event[key] = orjson.loads(value) if key == "data" else value
        raise EOFError

    async def points(self, count: int, timeout_s: float = 10.0) -> list:
        got: list = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            event = await self.next(deadline - time.monotonic())
            assert event["event"] == "points", event
            got.extend(p[0] // 1000 for p in event["data"]["points"])
            self.last_id = event["id"]
        return got


@contextlib.asynccontextmanager
async def open_stream(base: str, user, query: str, last_id: str | None = None):
    headers = dict(user.auth)
    if last_id:
        headers["Last-Event-ID"] = last_id
    path = f"{API}/telemetry/stream?{query}"
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("GET", path, headers=headers) as r,
    ):
        assert r.status_code == 200, await r.aread()
        reader = Sse(r)
        ready = await reader.next()
        assert ready["event"] == "ready"
        reader.last_id = ready["id"]
        yield reader


async def post(app, token: str, ts_list: list[int]) -> None:
    response = await send_points(
        app, token, [{"ts": ts, "value": float(ts % 1000)} for ts in ts_list]
    )
    assert response.status_code == 202, await response.get_json()


@pytest.fixture
async def live_setup(server):
    app, base = server
    owner = await register(app)
    project = await create_project(owner)
    sensor = await create_sensor(owner, project["id"], name="live")
    return app, base, owner, project, sensor


async def test_a_client_gets_exactly_the_points_ingested_after_it_subscribed(live_setup):
    app, base, owner, _project, sensor = live_setup
    t0 = int(time.time() * 1000) - 10_000
    await post(app, sensor["token"], [t0 + i for i in range(20)])  # before: never streamed
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}") as stream:
        sent = []
        for batch in range(5):
            ts = [t0 + 100 + batch * 50 + i for i in range(50)]
            await post(app, sensor["token"], ts)
            sent += ts
        late = [t0 + 50 + i for i in range(3)]  # older timestamps, received later
        await post(app, sensor["token"], late)
        sent += late
        assert await stream.points(len(sent)) == sent
        with pytest.raises(TimeoutError):
            await stream.next(0.5)  # nothing more, nothing twice


async def test_reconnecting_with_last_event_id_has_no_gap_and_no_duplicate(live_setup):
    app, base, owner, _project, sensor = live_setup
    t0 = int(time.time() * 1000) - 60_000
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}") as stream:
        first = [t0 + i for i in range(100)]
        await post(app, sensor["token"], first)
        assert await stream.points(100) == first
        last_id = stream.last_id
    missed = [t0 + 1000 + i for i in range(2500)]
    for start in range(0, len(missed), 700):
        await post(app, sensor["token"], missed[start : start + 700])
    await post(app, sensor["token"], [t0 + 500])  # a late point: an old timestamp, received now
    missed.append(t0 + 500)
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}", last_id) as stream:
        after = [t0 + 5000 + i for i in range(30)]
        await post(app, sensor["token"], after)
        assert await stream.points(len(missed) + 30) == missed + after
        with pytest.raises(TimeoutError):
            await stream.next(0.5)


async def test_a_slow_client_neither_delays_others_nor_grows(live_setup):
    app, base, owner, _project, sensor = live_setup
    broker = app.extensions["etp"].extras["live_broker"]
    slow = ClientQueue(max_points=500)  # subscribed like any client, never read
    await broker.subscribe(slow, [live_sensor_channel(sensor["id"])])
    t0 = int(time.time() * 1000) - 100_000
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}") as stream:
        sent = []
        started = time.monotonic()
        for batch in range(20):
            ts = [t0 + batch * 200 + i for i in range(200)]
            await post(app, sensor["token"], ts)
            sent += ts
        assert await stream.points(len(sent)) == sent
        assert time.monotonic() - started < 10
    assert slow.points <= slow.max_points and slow.dropped >= len(sent) - slow.max_points
    assert slow.closed is None  # behind, but not yet far behind
    await broker.unsubscribe(slow, [live_sensor_channel(sensor["id"])])


async def test_removing_a_member_closes_their_stream_within_a_second(live_setup):
    app, base, owner, project, sensor = live_setup
    member = await register(app)
    await add_member(owner, project["id"], member, "viewer")
    async with open_stream(base, member, f"sensor_ids={sensor['id']}") as stream:
        started = time.monotonic()
        await owner.json("DELETE", f"{API}/projects/{project['id']}/members/{member.id}", 204)
        event = await stream.next(2.0)
        assert event["event"] == "error" and event["data"]["code"] == "access_revoked"
        with pytest.raises((EOFError, httpx.ReadError, StopAsyncIteration)):
            await stream.next(2.0)
        assert time.monotonic() - started < 1.0


async def test_the_websocket_serves_many_channels_with_ticket_or_cookie(app):
    owner = await register(app)
    project = await create_project(owner)
    one = await create_sensor(owner, project["id"], name="one")
    two = await create_sensor(owner, project["id"], name="two")
    ticket = await owner.json("POST", f"{API}/ws/ticket", 201)
    assert ticket["expires_in"] == 30
    client = app.test_client()
    async with client.websocket(f"{API}/ws?ticket={ticket['ticket']}") as ws:

        async def receive() -> dict:
            return orjson.loads(await asyncio.wait_for(ws.receive(), 5))

        await ws.send(orjson.dumps({"type": "ping"}).decode())
        assert await receive() == {"type": "pong"}
        await ws.send("not json")
        assert (await receive())["code"] == "invalid_input"
        foreign = f"sensor:{uuid.uuid4()}"
        await ws.send(orjson.dumps({"type": "subscribe", "channel": foreign}).decode())
        assert (await receive())["code"] == "not_found"
        for sensor in (one, two):
            channel = f"sensor:{sensor['id']}"
            await ws.send(orjson.dumps({"type": "subscribe", "channel": channel}).decode())
            assert (await receive())["type"] == "subscribed"
        t0 = int(time.time() * 1000) - 5000
        await post(app, one["token"], [t0, t0 + 1])
        await post(app, two["token"], [t0 + 2])
        frames = [await receive(), await receive()]
        assert {f["channel"]: [p[0] // 1000 for p in f["points"]] for f in frames} == {
            f"sensor:{one['id']}": [t0, t0 + 1],
            f"sensor:{two['id']}": [t0 + 2],
        }
        assert all(f["seq"] == 1 for f in frames)
        await ws.send(
            orjson.dumps({"type": "unsubscribe", "channel": f"sensor:{one['id']}"}).decode()
        )
        assert (await receive())["type"] == "unsubscribed"
        await post(app, one["token"], [t0 + 3])
        await post(app, two["token"], [t0 + 4])
        frame = await receive()
        assert frame["channel"] == f"sensor:{two['id']}" and frame["seq"] == 2
    # A ticket is single use; a browser cookie works only from an allowed origin.
    with pytest.raises(Exception) as refused:
        async with client.websocket(f"{API}/ws?ticket={ticket['ticket']}") as ws:
            await ws.receive()
    assert getattr(refused.value, "response", None) is not None
    assert refused.value.response.status_code == 401
    async with owner.browser.websocket(
        f"{API}/ws", headers={"Origin": "http://testserver.local"}
    ) as ws:
        await ws.send(orjson.dumps({"type": "ping"}).decode())
        assert orjson.loads(await asyncio.wait_for(ws.receive(), 5)) == {"type": "pong"}
    with pytest.raises(Exception) as refused:
        async with owner.browser.websocket(
            f"{API}/ws", headers={"Origin": "https://evil.example"}
        ) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 403


async def test_a_redis_reconnect_is_followed_by_a_gap_fill(live_setup):
    app, base, owner, _project, sensor = live_setup
    broker = app.extensions["etp"].extras["live_broker"]
    t0 = int(time.time() * 1000) - 200_000
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}") as stream:
        await post(app, sensor["token"], [t0, t0 + 1])
        assert await stream.points(2) == [t0, t0 + 1]
        reconnects = broker.stats["reconnects"]
        await broker.pubsub.connection.disconnect()  # the broker's Redis link drops
        missed = [t0 + 10 + i for i in range(50)]  # published while nobody listens
        await post(app, sensor["token"], missed)
        after = [t0 + 100 + i for i in range(5)]
        await asyncio.sleep(1.2)
        await post(app, sensor["token"], after)
        assert await stream.points(55) == missed + after
        assert broker.stats["reconnects"] == reconnects + 1


async def test_idle_streams_get_keep_alive_comments(live_setup):
    app, base, owner, _project, sensor = live_setup
    app.config["ETP_SSE_KEEPALIVE_S"] = 0.2
    async with open_stream(base, owner, f"sensor_ids={sensor['id']}") as stream:
        comments = []
        async with asyncio.timeout(3):
            async for line in stream.lines:
                if line.startswith(":"):
                    comments.append(line)
                if len(comments) == 2:
                    break
        assert comments == [": keep-alive", ": keep-alive"]
