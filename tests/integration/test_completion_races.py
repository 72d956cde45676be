"""A completion racing the worker's own heartbeat, a cancel and an open once-step on the same rows.

Each test holds a real lock from a second session at the moment the race needs,
then checks the row: nothing waits for a deadline to pass, and nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from algajobs import JobContext, JobRegistry, PostgresRunner, Settings
from algajobs.db import Database
from algajobs.fallback.queue import ClaimedJob, QueueOps
from algajobs.limits import Limits
from tests.helpers import DSN


@pytest.fixture
async def held(settings: Settings) -> AsyncIterator[tuple[QueueOps, list[ClaimedJob], Database]]:
    """Three jobs claimed by one worker's queue operations (nothing runs them)."""
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        return None

    async with PostgresRunner(settings, registry) as runner:
        await runner.schedule_jobs("noop", [1, 2, 3], tenant_id="acme")
        db = await Database.open(settings)
        try:
            limits = Limits(registry, settings)
            limits.load()
            ops = QueueOps(db, "worker-1", settings.lease_duration)
            claimed = await ops.claim(10, limits.claim_filter())
            assert len(claimed.jobs) == 3
            yield ops, claimed.jobs, db
        finally:
            await db.close()


async def _session(settings: Settings) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(DSN, options=f"-c search_path={settings.schema_name}")


async def _statuses(db: Database) -> list[str]:
    async with db.pool.connection() as conn:
        cur = await conn.execute("SELECT status::text AS s FROM jobs ORDER BY job_id")
        return [r["s"] for r in await cur.fetchall()]


async def test_a_completion_waiting_behind_a_lease_renewal_still_completes(
    held: tuple[QueueOps, list[ClaimedJob], Database], settings: Settings
) -> None:
    """The heartbeat updates a row while the completion waits for it: the completion lands on the new version."""
    ops, jobs, db = held
    other = await _session(settings)
    try:
        await other.execute(
            "UPDATE jobs SET lease_expires_at = now() + interval '30 seconds' WHERE job_id = %s", [jobs[1].job_id]
        )
        completing = asyncio.create_task(ops.complete([(j.tenant_id, j.job_id, '"ok"') for j in jobs]))
        await asyncio.sleep(0.3)
        assert not completing.done()  # it waits for the renewal's lock
        await other.commit()
        await asyncio.wait_for(completing, 10)
    finally:
        await other.close()
    assert await _statuses(db) == ["completed"] * 3


async def test_an_open_once_step_blocks_neither_heartbeat_nor_completion_nor_cancel(
    held: tuple[QueueOps, list[ClaimedJob], Database], settings: Settings
) -> None:
    """A step's foreign-key check holds KEY SHARE on its job row for the whole step; the worker's own writes pass."""
    ops, jobs, db = held
    step = await _session(settings)
    try:
        await step.execute(
            "INSERT INTO job_details (tenant, detail_id, job_id, step_name, status, once) "
            "VALUES ('acme', gen_random_uuid(), %s, 'charge', 'processing', true)",
            [jobs[0].job_id],
        )
        renewed = await asyncio.wait_for(ops.heartbeat([(j.tenant_id, j.job_id) for j in jobs]), 5)
        assert renewed == []  # no cancel asked
        await asyncio.wait_for(ops.complete([(jobs[1].tenant_id, jobs[1].job_id, None)]), 5)
        cancelled = await asyncio.wait_for(db.fetch("cancel_job", {"tenant": "acme", "job_id": jobs[0].job_id}), 5)
        assert [r["status"] for r in cancelled] == ["processing"]  # asked to stop, still running
        await step.rollback()
    finally:
        await step.close()
    assert sorted(await _statuses(db)) == ["completed", "processing", "processing"]
