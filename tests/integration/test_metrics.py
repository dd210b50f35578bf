"""Run metrics through the API: batches and limits, downsampling that keeps every bucket's
true extremes, cursor pages, summaries, live updates."""

import asyncio
import random
from collections import Counter

import orjson
import pytest
import redis.asyncio as aioredis

from core.metrics import BATCH_MAX, PAGE_MAX
from core.redis_keys import live_run_metrics_channel
from tests.integration.helpers import add_member, create_project, register

API = "/api/v1"


async def make_run(app, owner=None):
    owner = owner or await register(app)
    project = await create_project(owner)
    exp = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "e"}
    )
    run = await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": "r"})
    return owner, project, run


async def log(user, run_id, metrics, expect=200, **kwargs):
    return await user.json(
        "POST", f"{API}/runs/{run_id}/metrics", expect, json={"metrics": metrics}, **kwargs
    )


async def test_roles_and_the_published_limits(app):
    owner, project, run = await make_run(app)
    viewer, stranger = await register(app), await register(app)
    await add_member(owner, project["id"], viewer, "viewer")
    assert await log(owner, run["id"], [{"name": "loss", "value": 1.5}]) == {"accepted": 1}
    error = await log(viewer, run["id"], [{"name": "loss", "value": 1}], 403)
    assert error["error"]["details"]["required"] == "editor"
    await log(stranger, run["id"], [{"name": "loss", "value": 1}], 404)
    await stranger.json("GET", f"{API}/runs/{run['id']}/metrics/summary", 404)
    summary = await viewer.json("GET", f"{API}/runs/{run['id']}/metrics/summary")
    assert [s["name"] for s in summary["items"]] == ["loss"]
    limits = await (await app.test_client().get(f"{API}/limits")).get_json()
    assert limits["metrics"]["metrics_per_request"] == BATCH_MAX
    assert limits["artifacts"]["max_bytes"] > 0 and limits["comparisons"]["runs_per_comparison"]


async def test_over_limit_and_invalid_batches_store_nothing(app, db):
    owner, _, run = await make_run(app)
    too_many = [{"name": "x", "value": 1}] * (BATCH_MAX + 1)
    error = await log(owner, run["id"], too_many, 413)
    assert error["error"]["code"] == "payload_too_large"
    assert error["error"]["details"] == {"limit": BATCH_MAX, "count": BATCH_MAX + 1}
    assert str(BATCH_MAX) in error["error"]["message"]
    batch = [{"name": "ok", "value": i, "step": i} for i in range(5)]
    batch[3] = {"name": "bad name!", "value": 1}
    error = await log(owner, run["id"], batch, 422)
    assert error["error"]["details"]["errors"][0]["index"] == 3
    response = await owner.call(
        "POST",
        f"{API}/runs/{run['id']}/metrics",
        data=b'{"metrics": [{"name": "x", "value": Infinity}]}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert await db.fetchval("SELECT count(*) FROM run_metrics") == 0
    assert await db.fetchval("SELECT count(*) FROM run_metric_summaries") == 0


async def test_downsampling_keeps_the_true_min_and_max_of_every_bucket(app):
    owner, _, run = await make_run(app)
    rng = random.Random(42)
    points = []
    for step in range(6_000):
        value = rng.gauss(0, 1)
        if rng.random() < 0.003:
            value *= 1_000  # rare spikes an average would hide
        points.append({"name": "loss", "value": value, "step": step})
        if rng.random() < 0.05:  # some steps are logged twice
            points.append({"name": "loss", "value": rng.gauss(5, 1), "step": step})
    for start in range(0, len(points), BATCH_MAX):
        await log(owner, run["id"], points[start : start + BATCH_MAX])
    body = await owner.json("GET", f"{API}/runs/{run['id']}/metrics?name=loss&max_points=37")
    [series] = body["series"]
    width, lo = series["bucket_steps"], series["step_from"]
    assert len(series["buckets"]) <= 37 and (lo, series["step_to"]) == (0, 5_999)
    expected: dict[int, list[tuple[int, float]]] = {}
    for p in points:
        expected.setdefault((p["step"] - lo) // width, []).append((p["step"], p["value"]))
    assert [b["step"] for b in series["buckets"]] == [lo + k * width for k in sorted(expected)]
    for bucket in series["buckets"]:
        members = expected[(bucket["step"] - lo) // width]
        values = [v for _, v in members]
        assert bucket["min"] == min(values) and bucket["max"] == max(values)
        assert bucket["count"] == len(values)
        assert bucket["avg"] == pytest.approx(sum(values) / len(values))
        assert bucket["first"] == members[0][1]  # lowest step, first written
        assert bucket["last"] == members[-1][1]  # highest step, last written
        assert (bucket["first_step"], bucket["last_step"]) == (members[0][0], members[-1][0])
    assert sum(b["count"] for b in series["buckets"]) == len(points)
    assert max(b["max"] for b in series["buckets"]) == max(p["value"] for p in points)
    narrow = await owner.json(
        "GET", f"{API}/runs/{run['id']}/metrics?max_points=10&step_from=100&step_to=199"
    )
    assert narrow["series"][0]["bucket_steps"] == 10
    assert sum(b["count"] for b in narrow["series"][0]["buckets"]) == sum(
        1 for p in points if 100 <= p["step"] <= 199
    )


async def test_cursor_pages_return_every_point_exactly_once(app):
    owner, _, run = await make_run(app)
    points = [
        {"name": name, "value": float(i), "step": i // 3}  # three points per step
        for name in ("acc", "loss", "val/loss")
        for i in range(1_500)
    ]
    await log(owner, run["id"], points)
    seen, cursor, pages = [], None, 0
    while True:
        query = "limit=333" + (f"&cursor={cursor}" if cursor else "")
        page = await owner.json("GET", f"{API}/runs/{run['id']}/metrics?{query}")
        seen += page["items"]
        pages += 1
        if pages == 2:  # points appended while paging are read at their place, once
            await log(owner, run["id"], [{"name": "zzz", "value": 1.0, "step": 0}])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    keys = [(p["name"], p["step"], p["value"]) for p in seen]
    assert len(keys) == len(set(keys)) == len(points) + 1
    assert Counter(keys) == Counter(
        [(p["name"], p["step"], p["value"]) for p in points] + [("zzz", 0, 1.0)]
    )
    assert keys == sorted(keys, key=lambda k: (k[0], k[1]))
    one = await owner.json("GET", f"{API}/runs/{run['id']}/metrics?name=loss&limit={PAGE_MAX}")
    assert [p["value"] for p in one["items"]] == [float(i) for i in range(1_500)]
    await owner.json("GET", f"{API}/runs/{run['id']}/metrics?limit={PAGE_MAX + 1}", 422)
    await owner.json("GET", f"{API}/runs/{run['id']}/metrics?cursor=garbage", 422)


async def test_summaries_merge_concurrent_batches(app):
    owner, _, run = await make_run(app)
    batches = [
        [{"name": n, "value": float(b * 100 + i), "step": b * 100 + i} for i in range(100)]
        for b in range(8)
        for n in ("a", "b")
    ]
    await asyncio.gather(*(log(owner, run["id"], batch) for batch in batches))
    await log(owner, run["id"], [{"name": "a", "value": -5.0, "step": 3}])  # an old step
    summary = await owner.json("GET", f"{API}/runs/{run['id']}/metrics/summary")
    by_name = {s["name"]: s for s in summary["items"]}
    assert by_name["a"]["count"] == 801 and by_name["b"]["count"] == 800
    assert by_name["a"]["last"] == 799.0 and by_name["a"]["last_step"] == 799
    assert by_name["a"]["min"] == -5.0 and by_name["a"]["max"] == 799.0
    assert by_name["b"]["avg"] == pytest.approx(sum(range(800)) / 800)
    assert by_name["a"]["first_step"] == 0


async def test_live_updates_after_commit_and_no_duplicates_on_retry(app, redis_url, db):
    owner, _, run = await make_run(app)
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(live_run_metrics_channel(run["id"]))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    key = {"Idempotency-Key": "batch-1"}
    metrics = [{"name": "loss", "value": 0.25, "step": 1}]
    await log(owner, run["id"], metrics, headers=key)
    message = None
    async with asyncio.timeout(5):
        while message is None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    body = orjson.loads(message["data"])
    assert body["run_id"] == run["id"] and body["points"][0][:3] == ["loss", 1, 0.25]
    response = await owner.call(
        "POST", f"{API}/runs/{run['id']}/metrics", json={"metrics": metrics}, headers=key
    )
    assert response.status_code == 200 and response.headers["Idempotent-Replayed"] == "true"
    assert await db.fetchval("SELECT count(*) FROM run_metrics") == 1
    await pubsub.aclose()
    await client.aclose()


async def test_archived_runs_take_no_metrics(app):
    owner, _, run = await make_run(app)
    for status in ("running", "succeeded", "archived"):
        await owner.json("POST", f"{API}/runs/{run['id']}/status", json={"status": status})
    error = await log(owner, run["id"], [{"name": "x", "value": 1}], 409)
    assert error["error"]["details"]["current_status"] == "archived"
