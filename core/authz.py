"""The role matrix: which project role may do what. The one place authorization rules live."""

from __future__ import annotations

from core.errors import Forbidden, NotFound

ROLES = ("viewer", "editor", "owner")
_RANK = {role: rank for rank, role in enumerate(ROLES)}

# The least role an action needs. Viewers read; editors create and edit; owners also manage
# members, delete projects/sensors/experiments, rotate sensor tokens and manage webhooks.
ACTION_MIN_ROLE: dict[str, str] = {
    "project.read": "viewer",
    "project.update": "owner",
    "project.delete": "owner",
    "members.read": "viewer",
    "members.manage": "owner",
    "audit.read": "viewer",
    "experiment.read": "viewer",
    "experiment.write": "editor",
    "experiment.delete": "owner",
    "run.read": "viewer",
    "run.write": "editor",
    "capture.read": "viewer",
    "capture.write": "editor",
    "sensor.read": "viewer",
    "sensor.write": "editor",
    "sensor.delete": "owner",
    "sensor.rotate_token": "owner",
    "sensor.share": "owner",
    "profile.read": "viewer",
    "profile.write": "editor",
    "telemetry.read": "viewer",
    "export.create": "viewer",
    "metrics.read": "viewer",
    "metrics.write": "editor",
    "artifact.read": "viewer",
    "artifact.write": "editor",
    "artifact.approve": "owner",
    "comparison.create": "viewer",
    "webhook.read": "editor",
    "webhook.manage": "owner",
}


def role_allows(role: str | None, action: str) -> bool:
    """Whether ``role`` (``None``: not a member) may perform ``action``."""
    if action not in ACTION_MIN_ROLE:
        raise KeyError(f"unknown action {action!r}")  # a programming error, never user input
    if role is None:
        return False
    return _RANK[role] >= _RANK[ACTION_MIN_ROLE[action]]


def check_role(role: str | None, action: str, *, what: str = "project") -> str:
    """Returns the role if it allows ``action``; non-members get 404, like a missing object."""
    if role is None:
        raise NotFound(f"{what} not found")
    if not role_allows(role, action):
        raise Forbidden(
            f"your role ({role}) does not allow {action}; it needs {ACTION_MIN_ROLE[action]}",
            details={"role": role, "required": ACTION_MIN_ROLE[action]},
        )
    return role
