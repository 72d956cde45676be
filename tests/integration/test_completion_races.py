"""A completion racing the worker's own heartbeat, a cancel and an open once-step on the same rows.

Each test holds a real lock from a second session at the moment the race needs,
then checks the row: nothing waits for a deadline to pass, and nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from algajobs import JobStatus, PostgresRunner, Settings
from algajobs.activities.records import TemporalRecords
from algajobs.db import Database
from algajobs.fallback.queue import ClaimedJob, Completion, QueueOps
from algajobs.limits import Limits
from tests.helpers import DSN, noop_registry

HeldJobs = tuple[QueueOps, list[ClaimedJob], Database, Limits]
"""A worker's queue operations, the jobs they hold, the database, and the worker's limits (to claim again)."""


@pytest.fixture
async def held(settings: Settings) -> AsyncIterator[HeldJobs]:
    """Three jobs claimed by one worker's queue operations (nothing runs them)."""
    registry = noop_registry()

    async with PostgresRunner(settings, registry) as runner:
        await runner.schedule_jobs("noop", [1, 2, 3], tenant_id="acme")
        db = await Database.open(settings)
        try:
            limits = Limits(registry, settings)
            limits.load()
            ops = QueueOps(db, "worker-1", settings.lease_duration)
            claimed = await ops.claim(10, limits.claim_filter())
            assert len(claimed.jobs) == 3
            yield ops, claimed.jobs, db, limits
        finally:
            await db.close()


async def _session(settings: Settings) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(DSN, options=f"-c search_path={settings.schema_name}")


async def _statuses(db: Database) -> list[str]:
    async with db.pool.connection() as conn:
        cur = await conn.execute("SELECT status::text AS s FROM jobs ORDER BY job_id")
        return [r["s"] for r in await cur.fetchall()]


async def test_a_completion_waiting_behind_a_lease_renewal_still_completes(held: HeldJobs, settings: Settings) -> None:
    """The heartbeat updates a row while the completion waits for it: the completion lands on the new version."""
    ops, jobs, db, _ = held
    async with await _session(settings) as other:
        await other.execute(
            "UPDATE jobs SET lease_expires_at = now() + interval '30 seconds' WHERE job_id = %s", [jobs[1].job_id]
        )
        completing = asyncio.create_task(ops.complete([Completion(j.held, '"ok"') for j in jobs]))
        await asyncio.sleep(0.3)
        assert not completing.done()  # it waits for the renewal's lock
        await other.commit()
        await asyncio.wait_for(completing, 10)
    assert await _statuses(db) == ["completed"] * 3


async def test_an_open_once_step_blocks_neither_heartbeat_nor_completion_nor_cancel(
    held: HeldJobs, settings: Settings
) -> None:
    """A step's foreign-key check holds KEY SHARE on its job row for the whole step; the worker's own writes pass."""
    ops, jobs, db, _ = held
    async with await _session(settings) as step:
        await step.execute(
            "INSERT INTO job_details (tenant, detail_id, job_id, step_name, status, once) "
            "VALUES ('acme', gen_random_uuid(), %s, 'charge', 'processing', true)",
            [jobs[0].job_id],
        )
        renewed = await asyncio.wait_for(ops.heartbeat([j.held for j in jobs]), 5)
        assert renewed == []  # no cancel asked
        await asyncio.wait_for(ops.complete([Completion(jobs[1].held, None)]), 5)
        cancelled = await asyncio.wait_for(db.fetch("cancel_job", {"tenant": "acme", "job_id": jobs[0].job_id}), 5)
        assert [r["status"] for r in cancelled] == ["processing"]  # asked to stop, still running
        await step.rollback()
    assert sorted(await _statuses(db)) == ["completed", "processing", "processing"]


async def test_an_earlier_attempt_no_longer_finishes_the_job(held: HeldJobs) -> None:
    """The same worker claimed the job again after its lease lapsed: the old run's writes leave the new one alone."""
    ops, jobs, db, limits = held
    stale = jobs[0]
    async with db.pool.connection() as conn:  # as recover_expired does once the lease lapses
        await conn.execute(
            "UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL WHERE job_id = %s",
            [stale.job_id],
        )
    (again,) = (await ops.claim(10, limits.claim_filter())).jobs
    assert (again.job_id, again.attempt) == (stale.job_id, stale.attempt + 1)

    lease = (await _row(db, stale.job_id))["lease_expires_at"]
    assert await ops.heartbeat([stale.held]) == []
    assert (await _row(db, stale.job_id))["lease_expires_at"] == lease  # not renewed by the stale run
    await ops.complete([Completion(stale.held, '"stale"')])
    await ops.finish(stale, JobStatus.FAILED, "stale")
    await ops.retry_later(stale, "stale", timedelta(0))
    await ops.release([stale])
    info = await _row(db, stale.job_id)
    assert (info["status"], info["attempts"], info["result"]) == ("processing", 2, None)

    await ops.complete([Completion(again.held, '"fresh"')])
    info = await _row(db, stale.job_id)
    assert (info["status"], info["attempts"], info["result"]) == ("completed", 2, "fresh")


async def _row(db: Database, job_id: UUID) -> dict[str, Any]:
    async with db.pool.connection() as conn:
        query = "SELECT status::text AS status, attempts, result, lease_expires_at FROM jobs WHERE job_id = %s"
        cur = await conn.execute(query, [job_id])
        row = await cur.fetchone()
    assert row is not None
    return row


async def test_a_late_temporal_retry_does_not_change_a_postgres_workers_attempt(
    held: HeldJobs,
) -> None:
    """A retry of the handler activity of a job since moved to PostgreSQL records nothing on its row."""
    ops, jobs, db, _ = held
    job = jobs[0]
    assert not await TemporalRecords(db, row_wait=1.0).set_attempts(job.tenant_id, job.job_id, job.attempt + 1)
    assert (await _row(db, job.job_id))["attempts"] == job.attempt
    await ops.complete([Completion(job.held, '"done"')])
    assert (await _row(db, job.job_id))["status"] == "completed"
