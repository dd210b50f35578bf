"""Periodic sweeps (arq cron): sensor status, scheduled profiles, stalled jobs, retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from core import jobs
from core.backfill import finish_backfill
from core.outbox import write_event
from core.profiles import activate_due_scheduled_profiles
from core.sensor_status import publish_status_transitions, sweep_sensor_statuses
from core.stores import audit as audit_store
from core.stores import backfill as backfill_store
from core.stores import exports as export_store
from core.stores import idempotency as idempotency_store
from core.stores import webhooks as webhook_store
from workers.queue import enqueue

log = logging.getLogger("etp.worker.sweeps")

EXPORT_MAX_ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(UTC)


async def _notify_relay(ctx: dict[str, Any]) -> None:
    await enqueue(ctx, jobs.RELAY_OUTBOX, job_id=jobs.relay_job_id())


async def sweep_sensor_status(ctx: dict[str, Any]) -> int:
    """Stores status changes (one outbox event each) and publishes them to live views."""
    async with ctx["db"].acquire() as conn:
        transitions = await sweep_sensor_statuses(conn, now=_now(), settings=ctx["settings"])
    if transitions:
        await publish_status_transitions(ctx["redis"], transitions)
        await _notify_relay(ctx)
    return len(transitions)


async def sweep_scheduled_profiles(ctx: dict[str, Any]) -> int:
    """Activates scheduled profiles whose ``valid_from`` has come (``profile.activated``)."""
    async with ctx["db"].transaction() as conn:
        changes = await activate_due_scheduled_profiles(conn, now=_now())
        for change in changes:
            profile = change.profile
            project_id = await conn.fetchval(
                "SELECT project_id FROM sensors WHERE id = $1", profile["sensor_id"]
            )
            await write_event(
                conn,
                project_id=project_id,
                event_type="profile.activated",
                payload={
                    "profile_id": str(profile["id"]),
                    "sensor_id": str(profile["sensor_id"]),
                    "version": profile["version"],
                    "valid_from": profile["valid_from"].isoformat(),
                    "scheduled": True,
                    "deprecated_profile_id": (
                        str(change.deprecated_profile_id) if change.deprecated_profile_id else None
                    ),
                },
            )
    if not changes:
        return 0
    gateway = ctx.get("gateway")
    if gateway is not None:  # writers refresh by themselves within seconds otherwise
        for change in changes:
            await gateway.reload_profiles(change.profile["sensor_id"])
    await _notify_relay(ctx)
    return len(changes)


async def sweep_stalled_jobs(ctx: dict[str, Any]) -> int:
    """Re-enqueues exports and backfills whose job went missing or whose worker died."""
    config: jobs.WorkerConfig = ctx["config"]
    stale_s = config.relay_stale_s
    restarted = 0
    async with ctx["db"].acquire() as conn:
        exports = await export_store.list_stalled_exports(conn, stale_s=stale_s)
        backfills = await backfill_store.lock_stalled_jobs(conn, stale_s=config.job_lease_s)
        for row in exports:
            if row["attempts"] > EXPORT_MAX_ATTEMPTS:
                await export_store.fail_export(
                    conn, export_id=row["id"], error="the export stopped too many times"
                )
                continue
            restarted += await enqueue(
                ctx,
                jobs.RUN_EXPORT,
                job_id=jobs.export_job_id(row["id"], row["lease_token"], row["attempts"]),
                export_id=str(row["id"]),
                lease_token=row["lease_token"],
            )
        for row in backfills:
            if row["attempts"] > config.backfill_max_attempts:
                await finish_backfill(
                    conn,
                    backfill_id=row["id"],
                    lease_token=None,
                    status="failed",
                    error=f"stopped {config.backfill_max_attempts} times; see the worker logs",
                )
                await _notify_relay(ctx)
                continue
            restarted += await enqueue(
                ctx,
                jobs.RUN_BACKFILL,
                job_id=jobs.backfill_job_id(row["id"], row["lease_token"], row["attempts"]),
                backfill_id=str(row["id"]),
                lease_token=row["lease_token"],
            )
    if restarted:
        log.info("restarted stalled jobs", extra={"count": restarted})
    return restarted


async def sweep_retention(ctx: dict[str, Any]) -> dict[str, int]:
    """Deletes what outlived its retention, each kind in short transactions."""
    config: jobs.WorkerConfig = ctx["config"]
    settings = ctx["settings"]
    now = _now()
    done: dict[str, int] = {}
    async with ctx["db"].acquire() as conn:
        done["audit_events"] = await audit_store.delete_audit_events_before(
            conn, cutoff=now - timedelta(days=settings.audit_retention_days)
        )
        done["idempotency_keys"] = await idempotency_store.delete_expired_keys(conn, now=now)
        result = await conn.execute(
            "DELETE FROM user_sessions WHERE (expires_at < $1 OR revoked_at < $1)",
            now - timedelta(days=config.session_retention_days),
        )
        done["user_sessions"] = int(result.split()[-1])
        done["webhook_messages"] = await webhook_store.delete_finished_messages(
            conn, older_than_days=config.webhook_retention_days
        )
        expired = await export_store.expire_exports(
            conn, older_than_days=config.export_retention_days
        )
        for row in expired:
            if row["storage_key"]:
                ctx["store"].delete(row["storage_key"])
        done["exports"] = len(expired)
        done["telemetry"] = 0
        if config.telemetry_retention_days > 0:
            cutoff = now - timedelta(days=config.telemetry_retention_days)
            for start, end, chunk in await backfill_store.list_retention_ranges(
                conn, cutoff=cutoff
            ):
                async with conn.transaction():
                    done["telemetry"] += await backfill_store.delete_untagged_points(
                        conn, start=start, end=end, chunk=chunk
                    )
    log.info("retention sweep", extra=done)
    return done
