"""Experiments: the rules (validation, archive while nothing runs, owner-only delete).

An experiment is ``active`` or ``archived``. Archiving is refused while any of its runs is
``running``, and an archived experiment takes no new runs and no run starts; unarchiving
makes it ``active`` again (see ADR 0004). Field validators shared with runs live here too.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.errors import Conflict, InvalidInput, NotFound
from core.json import dumps
from core.principal import AuditContext
from core.stores import audit as audit_store
from core.stores import experiments as store

EXPERIMENT_STATUSES = ("active", "archived")
NAME_MAX = 200
DESCRIPTION_MAX = 10_000
TYPE_MAX = 100
TAG_MAX = 100
TAGS_MAX = 100
JSON_MAX_BYTES = 64 * 1024


def clean_name(value: str, *, field: str = "name") -> str:
    value = value.strip()
    if not value or len(value) > NAME_MAX:
        raise InvalidInput(
            f"{field} must have 1 to {NAME_MAX} characters", details={"field": field}
        )
    return value


def clean_text(value: str, *, field: str, maximum: int) -> str:
    if len(value) > maximum:
        raise InvalidInput(
            f"{field} must have at most {maximum} characters", details={"field": field}
        )
    return value


def clean_tag(value: str, *, field: str = "tags") -> str:
    tag = value.strip()
    if not tag or len(tag) > TAG_MAX or "," in tag:
        raise InvalidInput(
            f"each tag must have 1 to {TAG_MAX} characters and no comma",
            details={"field": field, "tag": value[:TAG_MAX]},
        )
    return tag


def clean_tags(values: list[str], *, field: str = "tags") -> list[str]:
    """Stripped, de-duplicated (first occurrence kept) and bounded tags."""
    tags = list(dict.fromkeys(clean_tag(v, field=field) for v in values))
    if len(tags) > TAGS_MAX:
        raise InvalidInput(f"at most {TAGS_MAX} tags", details={"field": field})
    return tags


def clean_json_object(value: Any, *, field: str, max_bytes: int = JSON_MAX_BYTES) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object", details={"field": field})
    if len(dumps(value)) > max_bytes:
        raise InvalidInput(
            f"{field} must be at most {max_bytes // 1024} KiB of JSON", details={"field": field}
        )
    return value


def clean_status(value: str, allowed: tuple[str, ...], *, field: str = "status") -> str:
    if value not in allowed:
        raise InvalidInput(
            f"{field} must be one of {', '.join(allowed)}",
            details={"field": field, "allowed": list(allowed)},
        )
    return value


def _clean_changes(changes: dict[str, Any]) -> dict[str, Any]:
    cleaners = {
        "name": lambda v: clean_name(v),
        "description": lambda v: clean_text(v, field="description", maximum=DESCRIPTION_MAX),
        "experiment_type": lambda v: clean_text(v, field="experiment_type", maximum=TYPE_MAX),
        "tags": lambda v: clean_tags(v),
        "metadata": lambda v: clean_json_object(v, field="metadata"),
    }
    unknown = set(changes) - set(cleaners)
    if unknown:
        raise InvalidInput(
            f"these fields cannot be changed: {', '.join(sorted(unknown))}",
            details={"fields": sorted(unknown)},
        )
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            raise InvalidInput(f"{field} cannot be null", details={"field": field})
        clean[field] = cleaners[field](value)
    return clean


def _summary(row: Record | dict[str, Any], fields: Any) -> dict[str, Any]:
    return {field: row[field] for field in fields}


async def create_experiment(
    conn: asyncpg.Connection,
    *,
    project_id: UUID,
    fields: dict[str, Any],
    role: str,
    audit: AuditContext,
) -> Record:
    """Creates an active experiment from ``name`` and the optional editable fields."""
    if "name" not in fields:
        raise InvalidInput("name is required", details={"field": "name"})
    clean = _clean_changes(fields)
    async with conn.transaction():
        row = await store.insert_experiment(
            conn,
            project_id=project_id,
            name=clean["name"],
            description=clean.get("description", ""),
            experiment_type=clean.get("experiment_type", ""),
            tags=clean.get("tags", []),
            metadata=clean.get("metadata", {}),
            created_by=audit.actor_id,
        )
        await audit_store.insert_audit_event(
            conn,
            project_id=project_id,
            actor_id=audit.actor_id,
            actor_role=role,
            action="experiment.created",
            entity_type="experiment",
            entity_id=row["id"],
            after=_summary(row, ("name", "experiment_type", "tags")),
            request_id=audit.request_id,
        )
    return row


async def get_experiment(conn: asyncpg.Connection, *, experiment_id: UUID) -> Record:
    row = await store.fetch_experiment(conn, experiment_id=experiment_id)
    if row is None:
        raise NotFound("experiment not found")
    return row


async def update_experiment(
    conn: asyncpg.Connection,
    *,
    experiment_id: UUID,
    changes: dict[str, Any],
    role: str,
    audit: AuditContext,
) -> Record:
    """Changes name, description, experiment_type, tags or metadata (archived ones too)."""
    clean = _clean_changes(changes)
    async with conn.transaction():
        before = await store.lock_experiment(conn, experiment_id=experiment_id)
        if before is None:
            raise NotFound("experiment not found")
        if not clean:
            return before
        row = await store.update_experiment(conn, experiment_id=experiment_id, changes=clean)
        assert row is not None
        await audit_store.insert_audit_event(
            conn,
            project_id=row["project_id"],
            actor_id=audit.actor_id,
            actor_role=role,
            action="experiment.updated",
            entity_type="experiment",
            entity_id=experiment_id,
            before=_summary(before, clean),
            after=clean,
            request_id=audit.request_id,
        )
    return row


async def _refuse_while_running(
    conn: asyncpg.Connection, *, experiment_id: UUID, doing: str
) -> None:
    running = await store.fetch_running_run_names(conn, experiment_id=experiment_id)
    if running:
        names = ", ".join(repr(r["name"]) for r in running)
        raise Conflict(
            f"cannot {doing} the experiment while runs are running ({names}); "
            "finish or fail them first",
            details={"running_runs": [{"id": r["id"], "name": r["name"]} for r in running]},
        )


async def set_experiment_status(
    conn: asyncpg.Connection,
    *,
    experiment_id: UUID,
    status: str,
    role: str,
    audit: AuditContext,
) -> Record:
    """Archives or unarchives; asking for the current status answers with the experiment."""
    clean_status(status, EXPERIMENT_STATUSES)
    async with conn.transaction():
        before = await store.lock_experiment(conn, experiment_id=experiment_id)
        if before is None:
            raise NotFound("experiment not found")
        if before["status"] == status:
            return before
        if status == "archived":
            await _refuse_while_running(conn, experiment_id=experiment_id, doing="archive")
        row = await store.set_experiment_status(conn, experiment_id=experiment_id, status=status)
        assert row is not None
        await audit_store.insert_audit_event(
            conn,
            project_id=row["project_id"],
            actor_id=audit.actor_id,
            actor_role=role,
            action="experiment.archived" if status == "archived" else "experiment.unarchived",
            entity_type="experiment",
            entity_id=experiment_id,
            before={"status": before["status"]},
            after={"status": status},
            request_id=audit.request_id,
        )
    return row


async def delete_experiment(
    conn: asyncpg.Connection, *, experiment_id: UUID, role: str, audit: AuditContext
) -> None:
    """Deletes the experiment with its runs and capture sessions; refused while one runs."""
    async with conn.transaction():
        before = await store.lock_experiment(conn, experiment_id=experiment_id)
        if before is None:
            raise NotFound("experiment not found")
        await _refuse_while_running(conn, experiment_id=experiment_id, doing="delete")
        runs = await store.count_runs_by_status(conn, experiment_id=experiment_id)
        await store.delete_experiment(conn, experiment_id=experiment_id)
        await audit_store.insert_audit_event(
            conn,
            project_id=before["project_id"],
            actor_id=audit.actor_id,
            actor_role=role,
            action="experiment.deleted",
            entity_type="experiment",
            entity_id=experiment_id,
            before={"name": before["name"], "runs": sum(runs.values())},
            request_id=audit.request_id,
        )
