"""Claims running at the same time: each takes jobs the others do not hold.

A second session holds row locks the way another worker's claim in flight
does, and the claim under test runs meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest

from algajobs import PostgresRunner, Settings
from algajobs.db import Database
from algajobs.fallback.queue import QueueOps
from algajobs.limits import Limits
from tests.helpers import DSN, noop_registry

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[tuple[QueueOps, Limits]]:
    """30 queued jobs, ordered by priority (job i has priority 30 - i); nothing runs them."""
    registry = noop_registry()

    async with PostgresRunner(settings, registry) as runner:
        for i in range(30):
            await runner.schedule_job("noop", i, tenant_id="acme", priority=30 - i)
        db = await Database.open(settings)
        try:
            limits = Limits(registry, settings)
            limits.load()
            yield QueueOps(db, "worker-2", settings.lease_duration), limits
        finally:
            await db.close()


@asynccontextmanager
async def _holding(settings: Settings, count: int) -> AsyncIterator[None]:
    """A transaction holding the best ``count`` queued jobs, as another worker's claim does while it runs."""
    async with await psycopg.AsyncConnection.connect(DSN, options=f"-c search_path={settings.schema_name}") as conn:
        await conn.execute(
            "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY priority DESC LIMIT %s FOR NO KEY UPDATE",
            [count],
        )
        yield
        await conn.rollback()


async def test_a_claim_takes_the_next_jobs_while_another_claim_holds_the_best(
    queue: tuple[QueueOps, Limits], settings: Settings
) -> None:
    ops, limits = queue
    async with _holding(settings, 10):
        claimed = await ops.claim(10, limits.claim_filter())
    assert sorted(job.data for job in claimed.jobs) == list(range(10, 20))


async def test_a_claim_that_finds_every_due_job_held_reports_contention(
    queue: tuple[QueueOps, Limits], settings: Settings
) -> None:
    """Nothing to take now, but the queue is not empty: the worker claims again at once instead of idling."""
    ops, limits = queue
    async with _holding(settings, 30):
        claimed = await ops.claim(10, limits.claim_filter())
    assert claimed.jobs == []
    assert claimed.contended
    again = await ops.claim(10, limits.claim_filter())
    assert sorted(job.data for job in again.jobs) == list(range(10))


async def test_jobs_not_yet_due_are_not_contention(queue: tuple[QueueOps, Limits], settings: Settings) -> None:
    """The tenant still has queued jobs, none due: nothing to take, nothing to retry at once."""
    ops, limits = queue
    for _ in range(3):
        await ops.claim(10, limits.claim_filter())
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'queued', run_at = now() + interval '1 hour', worker_id = NULL"
            " WHERE job_id IN (SELECT job_id FROM jobs LIMIT 5)"
        )
    last = await ops.claim(10, limits.claim_filter())
    assert last.jobs == []
    assert not last.contended
