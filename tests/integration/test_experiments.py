"""Experiments through the API: roles, validation, filters, pages, archive, delete, audit,
export."""

import asyncio
import csv
import io
import uuid

import orjson

from tests.integration.helpers import add_member, create_project, register

API = "/api/v1"


async def _project_with_roles(app):
    owner = await register(app)
    editor = await register(app)
    viewer = await register(app)
    stranger = await register(app)
    project = await create_project(owner)
    await add_member(owner, project["id"], editor, "editor")
    await add_member(owner, project["id"], viewer, "viewer")
    return project, owner, editor, viewer, stranger


async def create_experiment(user, project_id, expect=201, **fields):
    body = {"name": fields.pop("name", "exp"), **fields}
    return await user.json("POST", f"{API}/projects/{project_id}/experiments", expect, json=body)


async def test_create_read_update_and_roles(app, db):
    project, owner, editor, viewer, stranger = await _project_with_roles(app)
    pid = project["id"]
    exp = await create_experiment(
        editor,
        pid,
        name="  Thermal drift ",
        description="oven",
        experiment_type="calibration",
        tags=["a", "b", "a"],
        metadata={"rig": 3},
    )
    assert exp["name"] == "Thermal drift"
    assert exp["status"] == "active" and exp["archived_at"] is None
    assert exp["tags"] == ["a", "b"]
    assert exp["metadata"] == {"rig": 3}
    assert exp["created_by"] == editor.id

    # Viewers read but cannot write; non-members see nothing (404 like a missing object).
    assert (await viewer.json("GET", f"{API}/experiments/{exp['id']}"))["id"] == exp["id"]
    body = await create_experiment(viewer, pid, 403)
    assert body["error"]["code"] == "forbidden"
    await stranger.json("GET", f"{API}/experiments/{exp['id']}", 404)
    await stranger.json("GET", f"{API}/projects/{pid}/experiments", 404)
    await stranger.json("POST", f"{API}/projects/{pid}/experiments", 404, json={"name": "x"})
    await viewer.json("PATCH", f"{API}/experiments/{exp['id']}", 403, json={"name": "y"})
    await owner.json("GET", f"{API}/experiments/{uuid.uuid4()}", 404)

    patched = await editor.json(
        "PATCH",
        f"{API}/experiments/{exp['id']}",
        json={"description": "new", "tags": ["c"], "metadata": {}},
    )
    assert patched["description"] == "new" and patched["tags"] == ["c"]
    assert patched["metadata"] == {} and patched["name"] == "Thermal drift"
    assert patched["updated_at"] > exp["updated_at"]

    # Validation: 422 with the field named; unknown fields are refused, not ignored.
    for body in (
        {"name": " "},
        {"name": "x", "tags": ["has,comma"]},
        {"name": "x", "colour": "red"},
        {"name": "x" * 201},
    ):
        error = await editor.json("POST", f"{API}/projects/{pid}/experiments", 422, json=body)
        assert error["error"]["code"] == "invalid_input"
    await editor.json("PATCH", f"{API}/experiments/{exp['id']}", 422, json={"name": None})

    actions = await db.fetch(
        "SELECT action, actor_role, actor_id, before, after FROM audit_events "
        "WHERE entity_type = 'experiment' AND entity_id = $1 ORDER BY id",
        exp["id"],
    )
    assert [a["action"] for a in actions] == ["experiment.created", "experiment.updated"]
    assert actions[1]["actor_role"] == "editor" and str(actions[1]["actor_id"]) == editor.id
    assert actions[1]["before"]["description"] == "oven"
    assert actions[1]["after"]["description"] == "new"


async def test_delete_is_owner_only_and_cascades_with_an_audit_record(app, db):
    project, owner, editor, _viewer, _stranger = await _project_with_roles(app)
    exp = await create_experiment(owner, project["id"])
    run = await owner.json("POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": "r"})
    await editor.json("DELETE", f"{API}/experiments/{exp['id']}", 403)
    response = await owner.call(
        "DELETE", f"{API}/experiments/{exp['id']}", headers={"X-Request-ID": "req-del-1"}
    )
    assert response.status_code == 204
    await owner.json("GET", f"{API}/experiments/{exp['id']}", 404)
    await owner.json("GET", f"{API}/runs/{run['id']}", 404)
    row = await db.fetchrow(
        "SELECT actor_role, request_id, before FROM audit_events "
        "WHERE action = 'experiment.deleted' AND entity_id = $1",
        exp["id"],
    )
    assert row["actor_role"] == "owner" and row["request_id"] == "req-del-1"
    assert row["before"] == {"name": "exp", "runs": 1}


async def test_archive_is_refused_while_a_run_is_running_and_is_reversible(app, db):
    project, owner, editor, _viewer, _stranger = await _project_with_roles(app)
    exp = await create_experiment(editor, project["id"])
    eid = exp["id"]
    run = await editor.json("POST", f"{API}/experiments/{eid}/runs", 201, json={"name": "hot"})
    await editor.json("POST", f"{API}/runs/{run['id']}/status", json={"status": "running"})

    refused = await editor.json("POST", f"{API}/experiments/{eid}/archive", 409)
    assert "running" in refused["error"]["message"] and "'hot'" in refused["error"]["message"]
    assert refused["error"]["details"]["running_runs"] == [{"id": run["id"], "name": "hot"}]
    await owner.json("DELETE", f"{API}/experiments/{eid}", 409)

    await editor.json("POST", f"{API}/runs/{run['id']}/status", json={"status": "succeeded"})
    archived = await editor.json("POST", f"{API}/experiments/{eid}/archive")
    assert archived["status"] == "archived" and archived["archived_at"] is not None
    again = await editor.json("POST", f"{API}/experiments/{eid}/archive")
    assert again["archived_at"] == archived["archived_at"]  # twice is harmless

    # An archived experiment takes no new runs and no run starts, but stays editable.
    error = await editor.json("POST", f"{API}/experiments/{eid}/runs", 409, json={"name": "x"})
    assert "archived" in error["error"]["message"]
    await editor.json("PATCH", f"{API}/experiments/{eid}", json={"description": "kept"})

    active = await editor.json("POST", f"{API}/experiments/{eid}/unarchive")
    assert active["status"] == "active" and active["archived_at"] is None
    await editor.json("POST", f"{API}/experiments/{eid}/runs", 201, json={"name": "x"})
    actions = await db.fetch(
        "SELECT action FROM audit_events WHERE entity_id = $1 ORDER BY id", eid
    )
    assert [a["action"] for a in actions] == [
        "experiment.created",
        "experiment.archived",
        "experiment.updated",
        "experiment.unarchived",
    ]


async def test_archive_and_run_start_racing_never_both_win(app):
    """A run start and an archive of its experiment at the same time: one of them loses."""
    project, owner, *_ = await _project_with_roles(app)
    for _ in range(5):
        exp = await create_experiment(owner, project["id"])
        run = await owner.json(
            "POST", f"{API}/experiments/{exp['id']}/runs", 201, json={"name": "r"}
        )
        start, archive = await asyncio.gather(
            owner.call("POST", f"{API}/runs/{run['id']}/status", json={"status": "running"}),
            owner.call("POST", f"{API}/experiments/{exp['id']}/archive"),
        )
        assert sorted([start.status_code, archive.status_code]) == [200, 409]


async def test_filters(app, db):
    project, owner, *_ = await _project_with_roles(app)
    pid = project["id"]
    await create_experiment(owner, pid, name="Alpha 100%", tags=["x", "y"])
    await create_experiment(owner, pid, name="beta", description="has ALPHA inside", tags=["x"])
    c = await create_experiment(owner, pid, name="gamma_1", tags=["y"])
    await owner.json("POST", f"{API}/experiments/{c['id']}/archive")
    await db.execute(
        "UPDATE experiments SET created_at = CASE name WHEN 'Alpha 100%' THEN "
        "'2024-01-01T00:00:00Z'::timestamptz WHEN 'beta' THEN '2024-02-01T00:00:00Z' "
        "ELSE '2024-03-01T00:00:00Z' END"
    )

    async def names(query):
        body = await owner.json("GET", f"{API}/projects/{pid}/experiments?{query}")
        return sorted(item["name"] for item in body["items"])

    assert await names("") == ["Alpha 100%", "beta", "gamma_1"]
    assert await names("status=active") == ["Alpha 100%", "beta"]
    assert await names("status=archived") == ["gamma_1"]
    assert await names("tags=x&tags=y") == ["Alpha 100%"]
    assert await names("tags=x,y") == ["Alpha 100%"]
    assert await names("tags=x") == ["Alpha 100%", "beta"]
    assert await names("q=alpha") == ["Alpha 100%", "beta"]  # name or description
    assert await names("q=100%25") == ["Alpha 100%"]  # % is literal
    assert await names("q=a_1") == ["gamma_1"]  # _ is literal
    assert await names("q=a%25") == []
    assert await names("created_after=2024-02-01T00:00:00Z") == ["beta", "gamma_1"]
    assert await names("created_before=2024-02-01T00:00:00%2B00:00") == ["Alpha 100%"]
    # An unencoded "+" arrives as a space; it is read as the offset it was meant to be.
    assert await names("created_before=2024-02-01T01:00:00+01:00") == ["Alpha 100%"]
    assert await names("status=active&tags=y&q=ALPHA") == ["Alpha 100%"]
    for bad in ("status=done", "created_after=yesterday", "created_after=2024-01-01T00:00:00"):
        error = await owner.json("GET", f"{API}/projects/{pid}/experiments?{bad}", 422)
        assert error["error"]["details"]["field"] in ("status", "created_after")


async def test_pages_miss_and_repeat_nothing_while_experiments_are_added(app):
    project, owner, *_ = await _project_with_roles(app)
    pid = project["id"]
    original = [(await create_experiment(owner, pid, name=f"e{i}"))["id"] for i in range(23)]
    seen: list[str] = []
    cursor = None
    added = 0
    while True:
        url = f"{API}/projects/{pid}/experiments?limit=4" + (f"&cursor={cursor}" if cursor else "")
        body = await owner.json("GET", url)
        seen += [item["id"] for item in body["items"]]
        # Someone else keeps adding experiments while we page.
        await create_experiment(owner, pid, name=f"new{added}")
        added += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an experiment was repeated across pages"
    assert set(original) <= set(seen), "an experiment was missed"
    assert [i for i in seen if i in original] == original[::-1]  # newest first
    await owner.json("GET", f"{API}/projects/{pid}/experiments?cursor=garbage", 422)


async def test_export_csv_and_json_with_filters(app):
    project, owner, _editor, viewer, stranger = await _project_with_roles(app)
    pid = project["id"]
    await create_experiment(owner, pid, name="=cmd|' /C calc'!A0", tags=["t1", "t2"])
    await create_experiment(owner, pid, name="plain", metadata={"k": [1, 2]})
    response = await viewer.call("GET", f"{API}/projects/{pid}/experiments/export?format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="experiments-{pid}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO((await response.get_data()).decode())))
    assert len(rows) == 2
    by_name = {row["name"]: row for row in rows}
    assert "'=cmd|' /C calc'!A0" in by_name  # a formula is defused
    assert by_name["'=cmd|' /C calc'!A0"]["tags"] == "t1,t2"
    assert orjson.loads(by_name["plain"]["metadata"]) == {"k": [1, 2]}

    response = await viewer.call(
        "GET", f"{API}/projects/{pid}/experiments/export?format=json&q=plain"
    )
    items = orjson.loads(await response.get_data())
    assert [i["name"] for i in items] == ["plain"]
    empty = await viewer.call("GET", f"{API}/projects/{pid}/experiments/export?format=json&q=zz")
    assert orjson.loads(await empty.get_data()) == []
    await viewer.json("GET", f"{API}/projects/{pid}/experiments/export?format=xml", 422)
    await stranger.json("GET", f"{API}/projects/{pid}/experiments/export", 404)
