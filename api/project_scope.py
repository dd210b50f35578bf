"""Which project a URL names, for ``project(action)`` routes; checked before the handler runs.

A project route names its object with one of the URL variables below. The caller's role in
that object's project must allow the route's action; non-members get 404 exactly like a missing
object, weaker roles 403. The check runs before body validation, so a viewer's POST is refused
the same way whatever its body.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from quart import g

from api.state import services
from core.authz import ACTION_MIN_ROLE, ROLES, check_role
from core.principal import Principal

# URL variable -> SQL giving the object's project ids (the home project first). A sensor can be
# shared with other projects: reading works from each of them, changing only from its home.
_PROJECTS_OF: dict[str, str] = {
    "project_id": "SELECT id FROM projects WHERE id = $1",
    "experiment_id": "SELECT project_id FROM experiments WHERE id = $1",
    "run_id": "SELECT project_id FROM runs WHERE id = $1",
    "capture_session_id": "SELECT project_id FROM capture_sessions WHERE id = $1",
    "sensor_id": (
        "SELECT project_id FROM sensors WHERE id = $1 UNION ALL "
        "SELECT project_id FROM sensor_projects WHERE sensor_id = $1"
    ),
    "profile_id": (
        "SELECT s.project_id FROM conversion_profiles p JOIN sensors s ON s.id = p.sensor_id "
        "WHERE p.id = $1 UNION ALL SELECT sp.project_id FROM conversion_profiles p "
        "JOIN sensor_projects sp ON sp.sensor_id = p.sensor_id WHERE p.id = $1"
    ),
    "webhook_id": "SELECT project_id FROM webhook_subscriptions WHERE id = $1",
    "artifact_id": "SELECT project_id FROM artifacts WHERE id = $1",
    "export_id": "SELECT project_id FROM exports WHERE id = $1",
}
SCOPE_VARIABLES = tuple(_PROJECTS_OF)

_OBJECT_NAMES = {name: name.removesuffix("_id").replace("_", " ") for name in _PROJECTS_OF}


def scope_variable(view_args: dict[str, Any]) -> str:
    """The URL variable that names the route's object (the most specific one)."""
    for name in reversed(SCOPE_VARIABLES):
        if name in view_args:
            return name
    raise LookupError(f"no project-scoping URL variable among {sorted(view_args)}")


async def authorize_project(
    caller: Principal, action: str, view_args: dict[str, Any]
) -> tuple[UUID, str]:
    """(project id, role) for the route's object, or raises NotFound/Forbidden."""
    variable = scope_variable(view_args)
    object_id = view_args[variable]
    reading = ACTION_MIN_ROLE[action] == "viewer"
    async with services().database.acquire() as conn:
        project_ids = [row[0] for row in await conn.fetch(_PROJECTS_OF[variable], object_id)]
        candidates = project_ids if reading else project_ids[:1]
        roles = {
            row["project_id"]: row["role"]
            for row in await conn.fetch(
                "SELECT project_id, role FROM project_members "
                "WHERE user_id = $1 AND project_id = ANY($2::uuid[])",
                caller.user_id,
                candidates,
            )
        }
    best: tuple[UUID, str] | None = None
    for project_id in candidates:
        role = roles.get(project_id)
        if role is not None and (best is None or ROLES.index(role) > ROLES.index(best[1])):
            best = (project_id, role)
    role = check_role(best[1] if best else None, action, what=_OBJECT_NAMES[variable])
    assert best is not None
    g.project_id, g.project_role = best[0], role
    return best[0], role
