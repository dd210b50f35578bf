"""``run_backfill``: works through a backfill's chunks for one time slice, then hands over.

A run claims the job with its lease token (which moves on), processes chunks until the job is
done or ``backfill_slice_s`` has passed, and then enqueues its own continuation under the new
token, so long backfills never hold one arq job for hours and other jobs get their turn. A
worker that dies stops renewing the lease; ``sweep_stalled_jobs`` enqueues the job again and the
next run resumes from the stored cursor, redoing nothing that was committed.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from uuid import UUID

from core import jobs
from core.backfill import finish_backfill, load_timeline, run_chunk
from core.stores import backfill as store
from workers.queue import enqueue

log = logging.getLogger("etp.worker.backfill")


async def run_backfill(ctx: dict[str, Any], *, backfill_id: str, lease_token: int) -> str:
    config: jobs.WorkerConfig = ctx["config"]
    job_id = UUID(backfill_id)
    deadline = time.monotonic() + config.backfill_slice_s
    async with ctx["db"].acquire() as conn:
        job = await store.claim_job(
            conn, backfill_id=job_id, lease_token=lease_token, lease_s=config.job_lease_s
        )
        if job is None:
            return "skipped"
        token = job["lease_token"]
        if job["rows_total"] == 0 and job["chunks_done"] == 0:
            total = await store.count_points(
                conn,
                sensor_id=job["sensor_id"],
                range_from=job["range_from"],
                range_to=job["range_to"],
            )
            await store.set_rows_total(conn, backfill_id=job_id, rows_total=total)
        timeline = await load_timeline(conn, job["sensor_id"])
        while True:
            result = await run_chunk(
                conn,
                backfill_id=job_id,
                lease_token=token,
                timeline=timeline,
                lease_s=config.job_lease_s,
            )
            if result is None:
                log.warning("backfill lease lost", extra={"backfill_id": backfill_id})
                return "skipped"
            if result.stale_minutes:
                log.warning(
                    "rollup minutes busy with writes were left as they are",
                    extra={"backfill_id": backfill_id, "minutes": result.stale_minutes},
                )
            if result.finished:
                break
            if time.monotonic() >= deadline:
                await enqueue(
                    ctx,
                    jobs.RUN_BACKFILL,
                    job_id=jobs.backfill_job_id(job_id, token, job["attempts"]),
                    backfill_id=backfill_id,
                    lease_token=token,
                )
                return "succeeded"
        row = await finish_backfill(conn, backfill_id=job_id, lease_token=token, status="succeeded")
    if row is not None:
        await enqueue(ctx, jobs.RELAY_OUTBOX, job_id=jobs.relay_job_id())
        log.info(
            "backfill finished",
            extra={
                "backfill_id": backfill_id,
                "rows": row["rows_done"],
                "changed": row["rows_changed"],
            },
        )
    return "succeeded"
