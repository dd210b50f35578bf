"""Projects and membership through the API."""

from tests.integration.helpers import add_member, create_project, register


async def test_list_shows_only_my_projects_with_my_role(app):
    alice, bob = await register(app), await register(app)
    mine = await create_project(alice, "Alice's")
    await create_project(bob, "Bob's")
    shared = await create_project(bob, "Shared")
    await add_member(bob, shared["id"], alice, "viewer")
    listing = await alice.json("GET", "/api/v1/projects")
    assert {(p["name"], p["role"]) for p in listing["items"]} == {
        ("Alice's", "owner"),
        ("Shared", "viewer"),
    }
    assert mine["role"] == "owner"
    found = await alice.json("GET", "/api/v1/projects?q=shar")
    assert [p["name"] for p in found["items"]] == ["Shared"]


async def test_pages_of_projects_never_repeat_or_skip(app):
    user = await register(app)
    names = {f"p{i:02d}" for i in range(7)}
    for name in sorted(names):
        await create_project(user, name)
    seen: list[str] = []
    url = "/api/v1/projects?limit=3"
    while url:
        page = await user.json("GET", url)
        seen += [p["name"] for p in page["items"]]
        url = (
            f"/api/v1/projects?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        )
    assert sorted(seen) == sorted(names) and len(seen) == len(names)
    bad = await user.call("GET", "/api/v1/projects?cursor=garbage")
    assert bad.status_code == 422


async def test_foreign_and_missing_projects_are_both_404(app):
    alice, mallory = await register(app), await register(app)
    project = await create_project(alice)
    foreign = await mallory.call("GET", f"/api/v1/projects/{project['id']}")
    missing = await mallory.call("GET", "/api/v1/projects/00000000-0000-0000-0000-000000000000")
    assert foreign.status_code == missing.status_code == 404
    assert (await foreign.get_json())["error"]["message"] == (await missing.get_json())["error"][
        "message"
    ]


async def test_owner_manages_members_and_the_last_owner_stays(app, db):
    owner, editor, viewer = await register(app), await register(app), await register(app)
    project = await create_project(owner)
    pid = project["id"]
    await add_member(owner, pid, editor, "editor")
    await add_member(owner, pid, viewer, "viewer")
    dup = await owner.call(
        "POST", f"/api/v1/projects/{pid}/members", json={"email": viewer.email, "role": "viewer"}
    )
    assert dup.status_code == 409
    nobody = await owner.call(
        "POST",
        f"/api/v1/projects/{pid}/members",
        json={"email": "nobody@example.com", "role": "viewer"},
    )
    assert nobody.status_code == 404
    # Editors and viewers cannot manage members.
    denied = await editor.call(
        "PATCH", f"/api/v1/projects/{pid}/members/{viewer.id}", json={"role": "owner"}
    )
    assert denied.status_code == 403
    # The last owner can be neither demoted nor removed, nor leave.
    demote = await owner.call(
        "PATCH", f"/api/v1/projects/{pid}/members/{owner.id}", json={"role": "editor"}
    )
    assert demote.status_code == 409
    leave = await owner.call("POST", f"/api/v1/projects/{pid}/leave")
    assert leave.status_code == 409
    await owner.json(
        "PATCH", f"/api/v1/projects/{pid}/members/{editor.id}", 200, json={"role": "owner"}
    )
    await owner.json("POST", f"/api/v1/projects/{pid}/leave", 204)
    # Role changes take effect on the next request.
    assert (await owner.call("GET", f"/api/v1/projects/{pid}")).status_code == 404
    await editor.json(
        "PATCH", f"/api/v1/projects/{pid}/members/{viewer.id}", 200, json={"role": "editor"}
    )
    renamed = await viewer.json("GET", f"/api/v1/projects/{pid}")
    assert renamed["role"] == "editor"
    await viewer.json("POST", f"/api/v1/projects/{pid}/leave", 204)
    actions = [
        r["action"]
        for r in await db.fetch(
            "SELECT action FROM audit_events WHERE entity_type = 'member' ORDER BY id"
        )
    ]
    assert actions == [
        "member.added",
        "member.added",
        "member.role_changed",
        "member.removed",
        "member.role_changed",
        "member.removed",
    ]


async def test_only_owners_rename_or_delete_and_audit_can_be_read(app):
    owner, editor = await register(app), await register(app)
    project = await create_project(owner, "Old")
    pid = project["id"]
    await add_member(owner, pid, editor, "editor")
    assert (
        await editor.call("PATCH", f"/api/v1/projects/{pid}", json={"name": "x"})
    ).status_code == 403
    assert (await editor.call("DELETE", f"/api/v1/projects/{pid}")).status_code == 403
    renamed = await owner.json("PATCH", f"/api/v1/projects/{pid}", json={"name": "New"})
    assert renamed["name"] == "New"
    audit = await editor.json("GET", f"/api/v1/projects/{pid}/audit?entity_type=project")
    assert [e["action"] for e in audit["items"]] == ["project.updated", "project.created"]
    assert audit["items"][0]["before"]["name"] == "Old"
    await owner.json("DELETE", f"/api/v1/projects/{pid}", 204)
    assert (await owner.call("GET", f"/api/v1/projects/{pid}")).status_code == 404
