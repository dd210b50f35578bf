"""Runs through the API: the status machine, params, listing, bulk changes, sensors, export."""

import asyncio
import csv
import gc
import io
import itertools
import secrets
import uuid

import orjson
import psutil
import pytest

from core.runs import RUN_STATUSES, RUN_TRANSITIONS
from tests.integration.helpers import add_member, create_project, register

API = "/api/v1"
# The shortest legal path from a new (draft) run to each status.
PATH_TO = {
    "draft": [],
    "running": ["running"],
    "succeeded": ["running", "succeeded"],
    "failed": ["running", "failed"],
    "archived": ["running", "succeeded", "archived"],
}


async def _setup(app):
    owner = await register(app)
    project = await create_project(owner)
    exp = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "exp"}
    )
    return owner, project, exp


async def new_run(user, experiment_id, expect=201, **fields):
    body = {"name": fields.pop("name", "run"), **fields}
    return await user.json("POST", f"{API}/experiments/{experiment_id}/runs", expect, json=body)


async def set_status(user, run_id, status, expect=200):
    return await user.json("POST", f"{API}/runs/{run_id}/status", expect, json={"status": status})


async def insert_sensor(db, project_id, name="s"):
    return await db.fetchval(
        "INSERT INTO sensors (project_id, name, token_hash, token_preview) "
        "VALUES ($1, $2, $3, 'tok') RETURNING id",
        uuid.UUID(project_id),
        name,
        secrets.token_bytes(32),
    )


async def test_create_defaults_and_roles(app):
    owner, project, exp = await _setup(app)
    viewer, stranger = await register(app), await register(app)
    await add_member(owner, project["id"], viewer, "viewer")
    run = await new_run(
        owner,
        exp["id"],
        name="r1",
        params={"lr": 0.1, "layers": [1, 2]},
        env={"python": "3.11"},
        git_sha="abc123",
        tags=["baseline"],
        notes="first",
        metadata={"host": "lab-1"},
    )
    assert run["status"] == "draft" and run["project_id"] == project["id"]
    assert run["experiment_id"] == exp["id"]
    assert run["params"] == {"lr": 0.1, "layers": [1, 2]} and run["git_sha"] == "abc123"
    assert run["started_at"] is None and run["finished_at"] is None
    assert run["duration_seconds"] is None
    assert (await viewer.json("GET", f"{API}/runs/{run['id']}"))["name"] == "r1"
    error = await new_run(viewer, exp["id"], 403)
    assert error["error"]["details"] == {"role": "viewer", "required": "editor"}
    await set_status(viewer, run["id"], "running", 403)
    await stranger.json("GET", f"{API}/runs/{run['id']}", 404)
    await new_run(stranger, exp["id"], 404)
    await new_run(owner, str(uuid.uuid4()), 404)
    await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 422, json={"name": "x", "p": 1})
    await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 422, json={"params": {}})


@pytest.mark.parametrize("start", RUN_STATUSES)
async def test_every_transition_from(app, db, start):
    """Every (from, to) pair: legal moves answer 200, asking for the current status is a no-op,
    everything else is 409 naming the current status and the allowed ones."""
    owner, _project, exp = await _setup(app)
    for target in RUN_STATUSES:
        run = await new_run(owner, exp["id"], name=f"{start}->{target}")
        for step in PATH_TO[start]:
            await set_status(owner, run["id"], step)
        before = await owner.json("GET", f"{API}/runs/{run['id']}")
        assert before["status"] == start
        if target in RUN_TRANSITIONS[start]:
            after = await set_status(owner, run["id"], target)
            assert after["status"] == target
            if target == "running":
                assert after["started_at"] is not None and after["finished_at"] is None
                assert after["duration_seconds"] >= 0
            if target in ("succeeded", "failed"):
                assert after["finished_at"] >= after["started_at"]
                assert after["duration_seconds"] >= 0
            if target == "archived":
                assert after["finished_at"] == before["finished_at"]
        elif target == start:
            after = await set_status(owner, run["id"], target)
            assert after == {**before, "duration_seconds": after["duration_seconds"]}
        else:
            error = (await set_status(owner, run["id"], target, 409))["error"]
            allowed = [s for s in RUN_STATUSES if s in RUN_TRANSITIONS[start]]
            assert error["details"]["current_status"] == start
            assert error["details"]["allowed"] == allowed
            assert f"is {start}" in error["message"]
            for status in allowed:
                assert status in error["message"]
            assert (await owner.json("GET", f"{API}/runs/{run['id']}"))["status"] == start
    await set_status(owner, run["id"], "paused", 422)
    changes = await db.fetch(
        "SELECT before, after, actor_role FROM audit_events WHERE action = 'run.status_changed'"
    )
    assert all(c["actor_role"] == "owner" for c in changes)
    assert all(c["after"]["status"] in RUN_TRANSITIONS[c["before"]["status"]] for c in changes)


async def test_duration_and_timestamps_are_the_servers(app, db):
    owner, _project, exp = await _setup(app)
    run = await new_run(owner, exp["id"])
    await set_status(owner, run["id"], "running")
    await db.execute(
        "UPDATE runs SET started_at = now() - interval '90 seconds' WHERE id = $1",
        uuid.UUID(run["id"]),
    )
    running = await owner.json("GET", f"{API}/runs/{run['id']}")
    assert 90 <= running["duration_seconds"] < 120  # elapsed so far
    done = await set_status(owner, run["id"], "failed")
    assert 90 <= done["duration_seconds"] < 120
    await asyncio.sleep(0.05)
    assert (await owner.json("GET", f"{API}/runs/{run['id']}"))["duration_seconds"] == done[
        "duration_seconds"
    ]
    # Clients cannot set server fields.
    for field in ("status", "started_at", "duration_seconds"):
        await owner.json("PATCH", f"{API}/runs/{run['id']}", 422, json={field: None})


async def test_params_are_write_once_and_patch_rules(app, db):
    owner, _project, exp = await _setup(app)
    run = await new_run(owner, exp["id"], params={"lr": 0.1, "seed": 1}, git_sha="aaa")
    url = f"{API}/runs/{run['id']}"
    merged = await owner.json("PATCH", url, json={"params": {"batch": 32, "lr": 0.1}})
    assert merged["params"] == {"lr": 0.1, "seed": 1, "batch": 32}
    error = await owner.json("PATCH", url, 409, json={"params": {"lr": 0.2, "seed": 2, "x": 1}})
    assert error["error"]["details"]["keys"] == ["lr", "seed"]
    assert "lr" in error["error"]["message"] and "seed" in error["error"]["message"]
    assert (await owner.json("GET", url))["params"] == merged["params"]  # nothing applied

    # git_sha and env only while draft; name, notes, tags and metadata any time.
    assert (await owner.json("PATCH", url, json={"git_sha": "bbb"}))["git_sha"] == "bbb"
    await set_status(owner, run["id"], "running")
    error = await owner.json("PATCH", url, 409, json={"env": {"a": 1}})
    assert error["error"]["details"] == {"current_status": "running", "fields": ["env"]}
    await owner.json("PATCH", url, json={"git_sha": "bbb"})  # unchanged value: fine
    updated = await owner.json(
        "PATCH", url, json={"name": "renamed", "notes": "n", "tags": ["t"], "metadata": {"m": 1}}
    )
    assert (updated["name"], updated["notes"], updated["tags"]) == ("renamed", "n", ["t"])
    await set_status(owner, run["id"], "succeeded")
    assert (await owner.json("PATCH", url, json={"params": {"late": True}}))["params"]["late"]
    await set_status(owner, run["id"], "archived")
    await owner.json("PATCH", url, 409, json={"params": {"later": True}})
    await owner.json("PATCH", url, json={"tags": ["kept"]})

    audit = await db.fetch(
        "SELECT before, after FROM audit_events WHERE action = 'run.updated' ORDER BY id"
    )
    assert audit[0]["after"] == {"params": ["batch"]}  # keys only
    assert audit[1]["before"] == {"git_sha": "aaa"} and audit[1]["after"] == {"git_sha": "bbb"}


async def test_listing_filters_and_sorts(app, db):
    owner, project, exp = await _setup(app)
    other = await owner.json(
        "POST", f"{API}/projects/{project['id']}/experiments", 201, json={"name": "other"}
    )
    r1 = await new_run(owner, exp["id"], name="bravo", tags=["gpu", "fast"], notes="lr sweep")
    r2 = await new_run(owner, exp["id"], name="alpha", tags=["gpu"])
    r3 = await new_run(owner, other["id"], name="charlie", tags=["fast"])
    await set_status(owner, r2["id"], "running")
    await db.execute(
        "UPDATE runs SET created_at = CASE name WHEN 'bravo' THEN '2024-01-01T00:00:00Z'"
        "::timestamptz WHEN 'alpha' THEN '2024-02-01T00:00:00Z' ELSE '2024-03-01T00:00:00Z' END"
    )

    async def names(path, query=""):
        body = await owner.json("GET", f"{API}/{path}?{query}")
        return [item["name"] for item in body["items"]]

    runs_of_exp = f"experiments/{exp['id']}/runs"
    runs_of_project = f"projects/{project['id']}/runs"
    assert await names(runs_of_exp) == ["alpha", "bravo"]  # newest first
    assert await names(runs_of_exp, "sort=created_at") == ["bravo", "alpha"]
    assert await names(runs_of_project, "sort=name") == ["alpha", "bravo", "charlie"]
    assert await names(runs_of_project, "sort=-name") == ["charlie", "bravo", "alpha"]
    assert await names(runs_of_project, f"experiment_id={other['id']}") == ["charlie"]
    assert await names(runs_of_project, "status=running") == ["alpha"]
    assert await names(runs_of_project, "status=draft,running&sort=name") == [
        "alpha",
        "bravo",
        "charlie",
    ]
    assert await names(runs_of_project, "tags=gpu&tags=fast") == ["bravo"]
    assert await names(runs_of_project, "tags=fast&sort=name") == ["bravo", "charlie"]
    assert await names(runs_of_project, "q=SWEEP") == ["bravo"]  # notes too
    assert await names(runs_of_project, "created_after=2024-02-01T00:00:00Z") == [
        "charlie",
        "alpha",
    ]
    assert await names(runs_of_project, "created_before=2024-02-01T00:00:00Z") == ["bravo"]
    for bad in ("sort=duration", "status=paused", "experiment_id=nope"):
        await owner.json("GET", f"{API}/{runs_of_project}?{bad}", 422)
    first = await owner.json("GET", f"{API}/{runs_of_project}?limit=1&sort=name")
    error = await owner.json(
        "GET", f"{API}/{runs_of_project}?limit=1&sort=created_at&cursor={first['next_cursor']}", 422
    )
    assert error["error"]["details"]["field"] == "cursor"
    assert r1["id"] != r3["id"]


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "name", "-name"])
async def test_pages_miss_and_repeat_nothing_while_runs_are_added(app, sort):
    owner, project, exp = await _setup(app)
    names = [f"run-{i:02d}" for i in range(17)]
    original = {(await new_run(owner, exp["id"], name=n))["id"] for n in names}
    seen: list[dict] = []
    cursor = None
    counter = itertools.count()
    while True:
        url = f"{API}/projects/{project['id']}/runs?limit=3&sort={sort}"
        body = await owner.json("GET", url + (f"&cursor={cursor}" if cursor else ""))
        seen += body["items"]
        # Runs that sort before, between and after the pages are added meanwhile.
        n = next(counter)
        if n < 8:
            for name in (f"run-{n:02d}a", f"aaa-{n}", f"zzz-{n}"):
                await new_run(owner, exp["id"], name=name)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "a run was repeated across pages"
    assert original <= set(ids), "a run was missed"
    column = sort.lstrip("-")
    keys = [(item[column], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


async def test_batch_status_is_all_or_nothing_with_per_run_failures(app, db):
    owner, _project, exp = await _setup(app)
    viewer_project_owner = await register(app)
    foreign_project = await create_project(viewer_project_owner)
    foreign_exp = await viewer_project_owner.json(
        "POST", f"{API}/projects/{foreign_project['id']}/experiments", 201, json={"name": "f"}
    )
    watched = await viewer_project_owner.json(
        "POST", f"{API}/experiments/{foreign_exp['id']}/runs", 201, json={"name": "w"}
    )
    hidden = await viewer_project_owner.json(
        "POST", f"{API}/experiments/{foreign_exp['id']}/runs", 201, json={"name": "h"}
    )
    # The owner of the first project is only a viewer in the second one.
    await add_member(viewer_project_owner, foreign_project["id"], owner, "viewer")
    runs = [await new_run(owner, exp["id"], name=f"b{i}") for i in range(5)]
    ids = [r["id"] for r in runs]

    body = await owner.json(
        "POST", f"{API}/runs:batch-status", json={"run_ids": ids, "status": "running"}
    )
    assert [r["status"] for r in body["items"]] == ["running"] * 5
    assert [r["id"] for r in body["items"]] == ids

    await set_status(owner, ids[0], "succeeded")
    missing = str(uuid.uuid4())
    stranger_owner = await register(app)
    stranger_project = await create_project(stranger_owner)
    stranger_exp = await stranger_owner.json(
        "POST", f"{API}/projects/{stranger_project['id']}/experiments", 201, json={"name": "s"}
    )
    foreign = await stranger_owner.json(
        "POST", f"{API}/experiments/{stranger_exp['id']}/runs", 201, json={"name": "x"}
    )
    request_ids = [*ids, missing, foreign["id"], watched["id"]]
    error = await owner.json(
        "POST", f"{API}/runs:batch-status", 409, json={"run_ids": request_ids, "status": "failed"}
    )
    failures = {f["run_id"]: f for f in error["error"]["details"]["failures"]}
    assert set(failures) == {ids[0], missing, foreign["id"], watched["id"]}
    assert failures[ids[0]]["code"] == "conflict"
    assert failures[ids[0]]["current_status"] == "succeeded"
    assert failures[missing]["code"] == failures[foreign["id"]]["code"] == "not_found"
    assert failures[watched["id"]]["code"] == "forbidden"
    assert "4 of 8" in error["error"]["message"]
    statuses = await db.fetch("SELECT status FROM runs WHERE id = ANY($1::uuid[])", ids[1:])
    assert {s["status"] for s in statuses} == {"running"}  # nothing changed

    # Asking for the status a run has is fine in bulk too.
    done = await owner.json(
        "POST", f"{API}/runs:batch-status", json={"run_ids": ids, "status": "succeeded"}
    )
    assert {r["status"] for r in done["items"]} == {"succeeded"}
    assert hidden["id"]  # an unrelated run of the other project is untouched
    too_many = [str(uuid.uuid4()) for _ in range(1001)]
    await owner.json(
        "POST", f"{API}/runs:batch-status", 422, json={"run_ids": too_many, "status": "failed"}
    )
    await owner.json("POST", f"{API}/runs:batch-status", 422, json={"run_ids": [], "status": "x"})
    audit = await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE action = 'run.status_changed' "
        "AND entity_id = ANY($1::text[])",
        ids,
    )
    assert audit == 5 + 1 + 4  # running x5, ids[0] succeeded, the rest succeeded


async def test_bulk_tags_add_remove_all_or_nothing(app, db):
    owner, _project, exp = await _setup(app)
    runs = [await new_run(owner, exp["id"], name=f"t{i}", tags=["old", "keep"]) for i in range(3)]
    ids = [r["id"] for r in runs]
    body = await owner.json(
        "POST",
        f"{API}/runs:bulk-tags",
        json={"run_ids": ids, "add": ["new", "keep"], "remove": ["old"]},
    )
    assert [r["tags"] for r in body["items"]] == [["keep", "new"]] * 3
    missing = str(uuid.uuid4())
    error = await owner.json(
        "POST", f"{API}/runs:bulk-tags", 409, json={"run_ids": [*ids, missing], "add": ["z"]}
    )
    assert error["error"]["details"]["failures"] == [
        {"run_id": missing, "code": "not_found", "message": "run not found"}
    ]
    tags = await db.fetch("SELECT tags FROM runs WHERE id = ANY($1::uuid[])", ids)
    assert all("z" not in t["tags"] for t in tags)
    await owner.json(
        "POST", f"{API}/runs:bulk-tags", 422, json={"run_ids": ids, "add": ["a"], "remove": ["a"]}
    )
    await owner.json("POST", f"{API}/runs:bulk-tags", 422, json={"run_ids": ids})


async def test_run_sensors(app, db):
    owner, project, exp = await _setup(app)
    other_owner = await register(app)
    other_project = await create_project(other_owner)
    own = await insert_sensor(db, project["id"], "own")
    shared = await insert_sensor(db, other_project["id"], "shared")
    foreign = await insert_sensor(db, other_project["id"], "foreign")
    await db.execute(
        "INSERT INTO sensor_projects (sensor_id, project_id) VALUES ($1, $2)",
        shared,
        uuid.UUID(project["id"]),
    )
    run = await new_run(owner, exp["id"])
    url = f"{API}/runs/{run['id']}/sensors"
    body = await owner.json("PUT", url, json={"sensor_ids": [str(own), str(shared), str(own)]})
    assert sorted(s["name"] for s in body["items"]) == ["own", "shared"]
    missing = uuid.uuid4()
    error = await owner.json(
        "PUT", url, 404, json={"sensor_ids": [str(own), str(foreign), str(missing)]}
    )
    assert error["error"]["details"]["sensor_ids"] == [str(foreign), str(missing)]
    assert str(foreign) in error["error"]["message"]
    listed = await owner.json("GET", url)
    assert sorted(s["name"] for s in listed["items"]) == ["own", "shared"]

    # The set is fixed while a capture session records it.
    await owner.json("POST", f"{API}/runs/{run['id']}/capture-sessions", 201)
    error = await owner.json("PUT", url, 409, json={"sensor_ids": []})
    assert "running" in error["error"]["message"]
    audit = await db.fetch("SELECT after FROM audit_events WHERE action = 'run.sensors_set'")
    assert len(audit) == 1 and sorted(audit[0]["after"]["sensor_ids"]) == sorted(
        [str(own), str(shared)]
    )


async def test_run_cannot_end_while_capturing(app):
    owner, _project, exp = await _setup(app)
    run = await new_run(owner, exp["id"])
    session = await owner.json("POST", f"{API}/runs/{run['id']}/capture-sessions", 201)
    error = await set_status(owner, run["id"], "succeeded", 409)
    assert error["error"]["details"]["capture_session_id"] == session["id"]
    await owner.json("POST", f"{API}/capture-sessions/{session['id']}/stop")
    assert (await set_status(owner, run["id"], "succeeded"))["status"] == "succeeded"


async def test_export_runs_csv_flattens_params_and_json_keeps_them(app):
    owner, project, exp = await _setup(app)
    await new_run(owner, exp["id"], name="a", params={"lr": 0.1, "opt": "adam"}, tags=["x", "y"])
    await new_run(owner, exp["id"], name="b", params={"seed": 7, "nested": {"k": True}})
    await new_run(owner, exp["id"], name="c", tags=["skip"])
    url = f"{API}/projects/{project['id']}/runs/export"
    response = await owner.call("GET", f"{url}?format=csv&sort=name&q=a")
    assert response.headers["Content-Disposition"].startswith("attachment;")
    reader = csv.DictReader(io.StringIO((await response.get_data()).decode()))
    assert reader.fieldnames[-2:] == ["param.lr", "param.opt"]  # only keys of matching runs
    rows = list(reader)
    assert [r["name"] for r in rows] == ["a"]
    assert (rows[0]["param.lr"], rows[0]["param.opt"], rows[0]["tags"]) == ("0.1", "adam", "x,y")
    response = await owner.call("GET", f"{url}?format=csv&sort=name")
    reader = csv.DictReader(io.StringIO((await response.get_data()).decode()))
    rows = list(reader)
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    assert [k for k in reader.fieldnames if k.startswith("param.")] == [
        "param.lr",
        "param.nested",
        "param.opt",
        "param.seed",
    ]
    assert orjson.loads(rows[1]["param.nested"]) == {"k": True} and rows[2]["param.lr"] == ""
    response = await owner.call("GET", f"{url}?format=json&tags=skip")
    assert response.headers["Content-Type"] == "application/json"
    items = orjson.loads(await response.get_data())
    assert [i["name"] for i in items] == ["c"] and items[0]["params"] == {}


@pytest.mark.slow
async def test_export_of_100k_runs_streams_in_constant_memory(app, db):
    owner, project, exp = await _setup(app)
    total = 100_000
    await db.execute(
        "INSERT INTO runs (experiment_id, project_id, name, status, params, tags, notes) "
        "SELECT $1, $2, 'run-' || g, 'succeeded', "
        "jsonb_build_object('lr', g * 0.001, 'seed', g % 7, 'arch', 'resnet' || (g % 5)), "
        "ARRAY['bulk', 'g' || (g % 3)], repeat('n', 200) FROM generate_series(1, $3) AS g",
        uuid.UUID(exp["id"]),
        uuid.UUID(project["id"]),
        total,
    )
    process = psutil.Process()
    gc.collect()
    baseline = peak = process.memory_info().rss
    lines = 0
    size = 0
    header = b""
    client = app.test_client()
    path = f"{API}/projects/{project['id']}/runs/export?format=csv"
    async with client.request(path, headers=owner.auth) as connection:
        await connection.send_complete()
        while True:
            chunk = await asyncio.wait_for(connection.receive(), timeout=60)
            if chunk == b"":  # Quart ends a streamed body with an empty chunk
                break
            if not header:
                header = chunk.split(b"\r\n", 1)[0]
            lines += chunk.count(b"\r\n")
            size += len(chunk)
            peak = max(peak, process.memory_info().rss)
    assert connection.status_code == 200
    growth_mb = (peak - baseline) / 2**20
    print(
        f"\nexport of {total} runs: {size / 2**20:.1f} MB of CSV streamed, "
        f"peak RSS growth {growth_mb:.1f} MB"
    )
    assert lines - 1 == total
    assert header.endswith(b"param.arch,param.lr,param.seed")
    assert growth_mb < 100
