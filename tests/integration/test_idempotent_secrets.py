"""Idempotent replays never carry secrets that are shown once."""

from tests.integration.helpers import create_project, register


async def test_a_replayed_sensor_create_is_the_same_sensor_without_its_token(app, db):
    owner = await register(app)
    project = await create_project(owner)
    headers = {"Idempotency-Key": "create-sensor-1"}
    url = f"/api/v1/projects/{project['id']}/sensors"
    first = await owner.json("POST", url, 201, json={"name": "once"}, headers=headers)
    replay = await owner.call("POST", url, json={"name": "once"}, headers=headers)
    body = await replay.get_json()
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert body["id"] == first["id"] and first["token"].startswith("etps_")
    assert body["token"] is None and body["redacted"] == ["token"]
    assert await db.fetchval("SELECT count(*) FROM sensors") == 1
    stored = await db.fetch("SELECT response_body FROM idempotency_keys")
    assert all(first["token"].encode() not in bytes(r["response_body"]) for r in stored)


async def test_project_creation_is_idempotent(app, db):
    owner = await register(app)
    headers = {"Idempotency-Key": "p-1"}
    one = await owner.json("POST", "/api/v1/projects", 201, json={"name": "x"}, headers=headers)
    two = await owner.json("POST", "/api/v1/projects", 201, json={"name": "x"}, headers=headers)
    assert one["id"] == two["id"]
    assert await db.fetchval("SELECT count(*) FROM projects") == 1
