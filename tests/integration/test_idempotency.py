"""``Idempotency-Key``: replay, mismatch, concurrency, scoping, failures, expiry and the sweep."""

import asyncio
import uuid

import orjson

from api.idempotency import fingerprint
from core.stores import idempotency as store
from tests.integration.helpers import create_project, register

API = "/api/v1"


async def _setup(app):
    owner = await register(app)
    project = await create_project(owner)
    return owner, project


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _count(db, table):
    return await db.fetchval(f"SELECT count(*) FROM {table}")


async def test_same_key_and_body_replays_the_first_answer(app, db):
    owner, project = await _setup(app)
    url = f"{API}/projects/{project['id']}/experiments"
    key = _key()
    first = await owner.call("POST", url, json={"name": "once"}, headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    second = await owner.call("POST", url, json={"name": "once"}, headers=key)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await second.get_json() == await first.get_json()
    assert await _count(db, "experiments") == 1
    row = await db.fetchrow("SELECT scope, route, state, status_code FROM idempotency_keys")
    assert row["scope"] == owner.id and row["route"] == "experiments.create_experiment"
    assert (row["state"], row["status_code"]) == ("done", 201)

    # Without a key every request runs.
    await owner.json("POST", url, 201, json={"name": "once"})
    await owner.json("POST", url, 201, json={"name": "once"})
    assert await _count(db, "experiments") == 3


async def test_same_key_with_another_request_is_422(app, db):
    owner, project = await _setup(app)
    url = f"{API}/projects/{project['id']}/experiments"
    key = _key()
    await owner.json("POST", url, 201, json={"name": "a"}, headers=key)
    error = await owner.json("POST", url, 422, json={"name": "b"}, headers=key)
    assert error["error"]["details"]["reason"] == "idempotency_key_reused"
    # Same endpoint, another object in the path: another request too.
    exp = await owner.json("POST", url, 201, json={"name": "c"})
    runs = [
        await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": n})
        for n in ("r1", "r2")
    ]
    status_key = _key()
    for run, expect in ((runs[0], 200), (runs[1], 422)):
        await owner.json(
            "POST",
            f"{API}/runs/{run['id']}/status",
            expect,
            json={"status": "running"},
            headers=status_key,
        )
    assert await _count(db, "experiments") == 2
    malformed = await owner.json(
        "POST", url, 422, json={"name": "d"}, headers={"Idempotency-Key": "x" * 256}
    )
    assert malformed["error"]["details"]["field"] == "Idempotency-Key"


async def test_keys_are_scoped_to_the_caller_and_the_route(app, db):
    owner, project = await _setup(app)
    other, other_project = await _setup(app)
    key = _key()
    await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "x"}, headers=key
    )
    mine = await other.call(
        "POST", f"{API}/projects/{other_project['id']}/experiments", json={"name": "x"}, headers=key
    )
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers
    exp = await mine.get_json()
    run = await other.call(
        "POST", f"{API}/experiments/{exp['id']}/runs", json={"name": "x"}, headers=key
    )
    assert run.status_code == 201 and "Idempotent-Replayed" not in run.headers
    assert await _count(db, "experiments") == 2 and await _count(db, "runs") == 1


async def test_a_request_still_in_progress_is_409_and_concurrent_duplicates_run_once(app, db):
    owner, project = await _setup(app)
    url = f"{API}/projects/{project['id']}/experiments"
    body = orjson.dumps({"name": "slow"})
    key = str(uuid.uuid4())
    # A first request holds the key and has not answered yet.
    await db.execute(
        "INSERT INTO idempotency_keys (scope, route, key, request_hash) VALUES ($1, $2, $3, $4)",
        owner.id,
        "experiments.create_experiment",
        key,
        fingerprint("POST", f"{url}?", body),
    )
    response = await owner.call(
        "POST", url, data=body, headers={"Idempotency-Key": key, "Content-Type": "application/json"}
    )
    error = await response.get_json()
    assert response.status_code == 409, error
    assert error["error"]["details"]["reason"] == "idempotency_key_in_progress"
    assert await _count(db, "experiments") == 0
    # A different body under the held key is a mismatch, not a wait.
    await owner.json("POST", url, 422, json={"name": "other"}, headers={"Idempotency-Key": key})

    # Truly concurrent duplicates: exactly one creates, the rest replay it or are told to wait.
    key = _key()
    responses = await asyncio.gather(
        *(owner.call("POST", url, json={"name": "race"}, headers=key) for _ in range(6))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = {(await r.get_json())["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert await db.fetchval("SELECT count(*) FROM experiments WHERE name = 'race'") == 1


async def test_failed_requests_release_the_key(app, db):
    owner, project = await _setup(app)
    exp = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "e"}
    )
    run = await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": "r"})
    key = _key()
    status_url = f"{API}/runs/{run['id']}/status"
    # An illegal move is refused and not remembered: the same request later succeeds.
    await owner.json("POST", status_url, 409, json={"status": "succeeded"}, headers=key)
    assert await _count(db, "idempotency_keys") == 0
    await owner.json("POST", status_url, json={"status": "running"})
    done = await owner.call("POST", status_url, json={"status": "succeeded"}, headers=key)
    assert done.status_code == 200 and "Idempotent-Replayed" not in done.headers
    replay = await owner.call("POST", status_url, json={"status": "succeeded"}, headers=key)
    assert replay.headers["Idempotent-Replayed"] == "true"


async def test_keys_expire_after_a_day_and_stale_claims_are_taken_over(app, db, settings):
    owner, project = await _setup(app)
    url = f"{API}/projects/{project['id']}/experiments"
    key = _key()
    await owner.json("POST", url, 201, json={"name": "a"}, headers=key)
    ttl = await db.fetchval("SELECT expires_at - created_at FROM idempotency_keys")
    assert ttl.total_seconds() == 24 * 3600
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    again = await owner.call("POST", url, json={"name": "a"}, headers=key)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert await _count(db, "experiments") == 2

    # A claim whose request died long ago is taken over by the retry.
    await db.execute(
        "UPDATE idempotency_keys SET state = 'in_progress', status_code = NULL, "
        "response_body = NULL, created_at = now() - interval '1 hour'"
    )
    retried = await owner.call("POST", url, json={"name": "a"}, headers=key)
    assert retried.status_code == 201
    assert await _count(db, "experiments") == 3


async def test_the_sweep_deletes_only_expired_keys(db):
    for i in range(5):
        await db.execute(
            "INSERT INTO idempotency_keys (scope, route, key, request_hash, expires_at) "
            "VALUES ('u', 'r', $1, '\\x00', now() + $2 * interval '1 hour')",
            f"k{i}",
            -1 if i < 3 else 1,
        )
    assert await store.delete_expired_keys(db, batch_size=2) == 3
    assert await db.fetchval("SELECT array_agg(key ORDER BY key) FROM idempotency_keys") == [
        "k3",
        "k4",
    ]
