"""Runs: the status machine, write-once params, and single and bulk changes.

Status machine (``RUN_TRANSITIONS``)::

    draft -> running -> succeeded | failed -> archived

Asking for the status a run already has changes nothing and is not an error. A run ends
(succeeded/failed) only when no capture session of it is running, and it starts only while its
experiment is active. Params are write-once per key, like MLflow's: a key may be added at any
time before the run is archived, but its value never changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg import Record

from core.authz import ACTION_MIN_ROLE, role_allows
from core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound
from core.experiments import (
    DESCRIPTION_MAX,
    TAGS_MAX,
    clean_json_object,
    clean_name,
    clean_status,
    clean_tags,
    clean_text,
)
from core.outbox import write_event
from core.principal import AuditContext, Principal
from core.stores import audit as audit_store
from core.stores import experiments as experiments_store
from core.stores import runs as store

RUN_STATUSES = ("draft", "running", "succeeded", "failed", "archived")
RUN_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"running"}),
    "running": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset({"archived"}),
    "failed": frozenset({"archived"}),
    "archived": frozenset(),
}
ENDED_STATUSES = frozenset({"succeeded", "failed", "archived"})
BULK_MAX_RUNS = 1000
PARAMS_MAX_KEYS = 1000
PARAM_KEY_MAX = 250
GIT_SHA_MAX = 64
NOTES_MAX = DESCRIPTION_MAX * 5


def allowed_next(status: str) -> list[str]:
    """The statuses a run in ``status`` may move to, in the machine's order."""
    return [s for s in RUN_STATUSES if s in RUN_TRANSITIONS[status]]


def transition_error(current: str, target: str) -> Conflict | None:
    """Why a run in ``current`` cannot move to ``target`` (``None``: it can, or is there)."""
    if target == current or target in RUN_TRANSITIONS[current]:
        return None
    allowed = allowed_next(current)
    then = f"it can move to {', '.join(allowed)}" if allowed else "archived is final"
    return Conflict(
        f"the run is {current} and cannot move to {target}; {then}",
        details={"current_status": current, "requested_status": target, "allowed": allowed},
    )


def merge_params(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` plus the new keys; refuses to change the value of a key already set."""
    changed = sorted(k for k, v in new.items() if k in current and current[k] != v)
    if changed:
        raise Conflict(
            f"params are write-once; these keys already have other values: {', '.join(changed)}",
            details={"keys": changed},
        )
    merged = {**current, **new}
    if len(merged) > PARAMS_MAX_KEYS:
        raise InvalidInput(
            f"a run has at most {PARAMS_MAX_KEYS} params", details={"field": "params"}
        )
    return merged


def clean_params(value: Any) -> dict[str, Any]:
    params = clean_json_object(value, field="params", max_bytes=256 * 1024)
    bad = [k for k in params if not k.strip() or len(k) > PARAM_KEY_MAX]
    if bad:
        raise InvalidInput(
            f"param keys must have 1 to {PARAM_KEY_MAX} characters",
            details={"field": "params", "keys": [k[:PARAM_KEY_MAX] for k in bad]},
        )
    if len(params) > PARAMS_MAX_KEYS:
        raise InvalidInput(
            f"a run has at most {PARAMS_MAX_KEYS} params", details={"field": "params"}
        )
    return params


def _clean_git_sha(value: str | None) -> str | None:
    if value is not None and (len(value) > GIT_SHA_MAX or not value.strip()):
        raise InvalidInput(
            f"git_sha must have 1 to {GIT_SHA_MAX} characters", details={"field": "git_sha"}
        )
    return value


_CLEANERS: dict[str, Any] = {
    "name": clean_name,
    "params": clean_params,
    "env": lambda v: clean_json_object(v, field="env"),
    "git_sha": _clean_git_sha,
    "tags": clean_tags,
    "notes": lambda v: clean_text(v, field="notes", maximum=NOTES_MAX),
    "metadata": lambda v: clean_json_object(v, field="metadata"),
}
_NULLABLE = frozenset({"git_sha"})


def clean_run_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(_CLEANERS))
    if unknown:
        raise InvalidInput(
            f"these fields cannot be set: {', '.join(unknown)}", details={"fields": unknown}
        )
    clean: dict[str, Any] = {}
    for field, value in fields.items():
        if value is None and field not in _NULLABLE:
            raise InvalidInput(f"{field} cannot be null", details={"field": field})
        clean[field] = _CLEANERS[field](value)
    return clean


def _audit_summary(values: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of changed fields (params as keys only: values can be big)."""
    return {k: (sorted(v) if k == "params" else v) for k, v in values.items()}


async def create_run(
    conn: asyncpg.Connection,
    *,
    experiment_id: UUID,
    fields: Mapping[str, Any],
    role: str,
    audit: AuditContext,
) -> Record:
    """A ``draft`` run in an active experiment."""
    if "name" not in fields:
        raise InvalidInput("name is required", details={"field": "name"})
    clean = clean_run_fields(fields)
    async with conn.transaction():
        experiment = await experiments_store.lock_experiment(
            conn, experiment_id=experiment_id, exclusive=False
        )
        if experiment is None:
            raise NotFound("experiment not found")
        if experiment["status"] == "archived":
            raise Conflict(
                "the experiment is archived; unarchive it to add runs",
                details={"experiment_status": "archived"},
            )
        row = await store.insert_run(
            conn,
            experiment_id=experiment_id,
            project_id=experiment["project_id"],
            name=clean["name"],
            params=clean.get("params", {}),
            env=clean.get("env", {}),
            git_sha=clean.get("git_sha"),
            tags=clean.get("tags", []),
            notes=clean.get("notes", ""),
            metadata=clean.get("metadata", {}),
            created_by=audit.actor_id,
        )
        await _audit(conn, row, role, audit, "run.created", after=_audit_summary(clean))
    return row


async def get_run(conn: asyncpg.Connection, *, run_id: UUID) -> Record:
    row = await store.fetch_run(conn, run_id=run_id)
    if row is None:
        raise NotFound("run not found")
    return row


async def update_run(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    changes: Mapping[str, Any],
    role: str,
    audit: AuditContext,
) -> Record:
    """name, notes, tags, metadata: any time; params: merged write-once, not once archived;
    git_sha and env: only while draft (they describe what the run executes)."""
    clean = clean_run_fields(changes)
    async with conn.transaction():
        before = await store.lock_run(conn, run_id=run_id)
        if before is None:
            raise NotFound("run not found")
        if "params" in clean:
            if before["status"] == "archived" and set(clean["params"]) - set(before["params"]):
                raise Conflict(
                    "the run is archived; its params cannot change",
                    details={"current_status": "archived"},
                )
            clean["params"] = merge_params(before["params"], clean["params"])
        frozen = sorted(f for f in ("git_sha", "env") if f in clean and clean[f] != before[f])
        if frozen and before["status"] != "draft":
            raise Conflict(
                f"{' and '.join(frozen)} can change only while the run is draft; "
                f"it is {before['status']}",
                details={"current_status": before["status"], "fields": frozen},
            )
        changed = {k: v for k, v in clean.items() if v != before[k]}
        if not changed:
            return before
        row = await store.update_run(conn, run_id=run_id, changes=changed)
        assert row is not None
        if "params" in changed:
            changed = {**changed, "params": set(changed["params"]) - set(before["params"])}
        await _audit(
            conn,
            row,
            role,
            audit,
            "run.updated",
            before=_audit_summary({k: before[k] for k in changed if k != "params"}),
            after=_audit_summary(changed),
        )
    return row


async def change_run_status(
    conn: asyncpg.Connection,
    *,
    run_id: UUID,
    status: str,
    role: str,
    audit: AuditContext,
) -> Record:
    """Moves one run along the status machine (409 naming the allowed moves otherwise)."""
    clean_status(status, RUN_STATUSES)
    async with conn.transaction():
        run = await store.lock_run(conn, run_id=run_id)
        if run is None:
            raise NotFound("run not found")
        if run["status"] == status:
            return run
        for error in (await _move_errors(conn, {run_id: run}, status)).values():
            raise error
        [row] = await store.set_runs_status(conn, run_ids=[run_id], status=status)
        await _audit_status(conn, run, row, role, audit)
    return row


async def _move_errors(
    conn: asyncpg.Connection, runs: Mapping[UUID, Record], status: str
) -> dict[UUID, AppError]:
    """Why each of the (locked) runs cannot move to ``status``. Starts lock the experiments
    shared, like capture starts, so an archive cannot slip in between."""
    capturing = await store.fetch_running_capture_sessions(conn, run_ids=list(runs))
    archived: set[UUID] = set()
    if status == "running":
        for experiment_id in sorted({run["experiment_id"] for run in runs.values()}):
            experiment = await experiments_store.lock_experiment(
                conn, experiment_id=experiment_id, exclusive=False
            )
            if experiment is None or experiment["status"] == "archived":
                archived.add(experiment_id)
    errors: dict[UUID, AppError] = {}
    for run_id, run in runs.items():
        error = transition_error(run["status"], status)
        if error is None and run["status"] != status:
            if status == "running" and run["experiment_id"] in archived:
                error = Conflict(
                    "the run's experiment is archived; unarchive it before starting runs",
                    details={"current_status": run["status"], "experiment_status": "archived"},
                )
            elif status in ("succeeded", "failed") and run_id in capturing:
                session = capturing[run_id]
                error = Conflict(
                    f"capture session #{session['ordinal']} of this run is running; "
                    "stop it before ending the run",
                    details={"current_status": run["status"], "capture_session_id": session["id"]},
                )
        if error is not None:
            errors[run_id] = error
    return errors


async def change_runs_status(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    run_ids: Sequence[UUID],
    status: str,
    audit: AuditContext,
) -> list[Record]:
    """All-or-nothing status change of up to ``BULK_MAX_RUNS`` runs in any of the caller's
    projects; a refusal lists every failing run (``details.failures``)."""
    clean_status(status, RUN_STATUSES)
    ids = _bulk_ids(run_ids)
    async with conn.transaction():
        runs, failures = await _lock_for_bulk(conn, ids, principal)
        errors = await _move_errors(conn, runs, status)
        failures += [_failure(run_id, error) for run_id, error in errors.items()]
        _raise_failures(failures, len(ids))
        moving = [run_id for run_id, run in runs.items() if run["status"] != status]
        updated = await store.set_runs_status(conn, run_ids=moving, status=status)
        for row in updated:
            await _audit_status(conn, runs[row["id"]], row, runs[row["id"]]["role"], audit)
        rows = {row["id"]: row for row in await store.fetch_runs(conn, run_ids=ids)}
    return [rows[run_id] for run_id in ids]


async def change_runs_tags(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    run_ids: Sequence[UUID],
    add: Sequence[str],
    remove: Sequence[str],
    audit: AuditContext,
) -> list[Record]:
    """All-or-nothing: adds then removes tags on up to ``BULK_MAX_RUNS`` runs."""
    to_add = clean_tags(list(add), field="add")
    to_remove = clean_tags(list(remove), field="remove")
    both = sorted(set(to_add) & set(to_remove))
    if both:
        raise InvalidInput(
            f"a tag cannot be both added and removed: {', '.join(both)}", details={"tags": both}
        )
    if not to_add and not to_remove:
        raise InvalidInput("give tags to add or to remove", details={"field": "add"})
    ids = _bulk_ids(run_ids)
    async with conn.transaction():
        runs, failures = await _lock_for_bulk(conn, ids, principal)
        changes: list[tuple[UUID, list[str]]] = []
        for run_id, run in runs.items():
            kept = [t for t in run["tags"] if t not in to_remove]
            tags = kept + [t for t in to_add if t not in kept]
            if len(tags) > TAGS_MAX:
                failures.append(_failure(run_id, InvalidInput(f"at most {TAGS_MAX} tags")))
            elif tags != list(run["tags"]):
                changes.append((run_id, tags))
        _raise_failures(failures, len(ids))
        await store.set_runs_tags(conn, tags_by_run=changes)
        for run_id, tags in changes:
            run = runs[run_id]
            await _audit(
                conn,
                run,
                run["role"],
                audit,
                "run.updated",
                before={"tags": list(run["tags"])},
                after={"tags": tags},
            )
        rows = {row["id"]: row for row in await store.fetch_runs(conn, run_ids=ids)}
    return [rows[run_id] for run_id in ids]


def _bulk_ids(run_ids: Sequence[UUID]) -> list[UUID]:
    ids = list(dict.fromkeys(run_ids))
    if not 1 <= len(ids) <= BULK_MAX_RUNS:
        raise InvalidInput(
            f"give 1 to {BULK_MAX_RUNS} run ids", details={"field": "run_ids", "count": len(ids)}
        )
    return ids


async def _lock_for_bulk(
    conn: asyncpg.Connection, ids: list[UUID], principal: Principal
) -> tuple[dict[UUID, Record], list[dict[str, Any]]]:
    """The runs the caller may write (locked, in request order) and failures for the rest."""
    found = {
        row["id"]: row
        for row in await store.lock_runs_for_member(conn, run_ids=ids, user_id=principal.user_id)
    }
    runs: dict[UUID, Record] = {}
    failures: list[dict[str, Any]] = []
    for run_id in ids:
        row = found.get(run_id)
        if row is None or row["role"] is None:
            failures.append(_failure(run_id, NotFound("run not found")))
        elif not role_allows(row["role"], "run.write"):
            needed = ACTION_MIN_ROLE["run.write"]
            message = f"your role ({row['role']}) does not allow run.write; it needs {needed}"
            failures.append(_failure(run_id, Forbidden(message)))
        else:
            runs[run_id] = row
    return runs, failures


def _failure(run_id: UUID, error: AppError) -> dict[str, Any]:
    return {"run_id": run_id, "code": error.code, "message": error.message, **error.details}


def _raise_failures(failures: list[dict[str, Any]], total: int) -> None:
    if failures:
        raise Conflict(
            f"{len(failures)} of {total} runs cannot be changed; nothing was changed",
            details={"failures": failures},
        )


async def _audit_status(
    conn: asyncpg.Connection, before: Record, after: Record, role: str, audit: AuditContext
) -> None:
    await _audit(
        conn,
        after,
        role,
        audit,
        "run.status_changed",
        before={"status": before["status"]},
        after={"status": after["status"]},
    )
    await write_event(
        conn,
        project_id=after["project_id"],
        event_type="run.status_changed",
        payload={"run_id": str(after["id"]), "from": before["status"], "to": after["status"]},
    )


async def _audit(
    conn: asyncpg.Connection,
    run: Record,
    role: str,
    audit: AuditContext,
    action: str,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    await audit_store.insert_audit_event(
        conn,
        project_id=run["project_id"],
        actor_id=audit.actor_id,
        actor_role=role,
        action=action,
        entity_type="run",
        entity_id=run["id"],
        before=before,
        after=after,
        request_id=audit.request_id,
    )
