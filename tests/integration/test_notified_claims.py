"""An idle PostgreSQL worker claims the job an insert notice names by its key, within every rule a claim keeps."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, Settings
from algajobs.db import Database
from algajobs.fallback.queue import QueueOps
from algajobs.limits import Limits
from tests.helpers import DSN, eventually


def _registry(ran: list[Any], *, reports: bool = True) -> JobRegistry:
    """``mail`` in the default queue and, unless ``reports`` is False, ``report`` in queue ``reports``."""
    registry = JobRegistry()

    @registry.handler("mail")
    async def mail(ctx: JobContext, data: Any) -> Any:
        ran.append(data)
        return data

    if reports:

        @registry.handler("report", queue="reports")
        async def report(ctx: JobContext, data: Any) -> None:
            ran.append(data)

    return registry


async def _idle(runner: PostgresRunner) -> None:
    """Until the worker listens for notices and waits for work (its first claims found nothing)."""
    worker = runner.worker
    assert worker is not None
    await asyncio.wait_for(worker._listener.connected.wait(), 10)
    # Idle with no wake-up pending (the listener's first connect wakes it for a usual claim).
    await eventually(lambda: asyncio.sleep(0, result=worker._idle and not worker._wake.is_set()), bool)


async def test_an_idle_worker_claims_each_notified_job_by_key(settings: Settings) -> None:
    ran: list[Any] = []
    # No poll while idle: a poll's usual claim could take a job just before its notice is read.
    conf = settings.model_copy(update={"poll_interval": timedelta(seconds=60)})
    async with PostgresRunner(conf, _registry(ran)) as runner:
        await runner.start()
        for n in range(3):
            await _idle(runner)
            job = await runner.schedule_job("mail", n, tenant_id="acme")
            assert await runner.wait_for_result(job.job_id, tenant_id="acme", timeout=10) == n
        worker = runner.worker
        assert worker is not None
        assert worker.stats.claimed_by_notice == 3
        await runner.stop()
    assert ran == [0, 1, 2]


async def test_of_two_idle_workers_one_claims_the_notified_job(settings: Settings) -> None:
    ran: list[Any] = []
    conf = settings.model_copy(update={"poll_interval": timedelta(seconds=60)})  # as above
    async with contextlib.AsyncExitStack() as stack:
        runners = [await stack.enter_async_context(PostgresRunner(conf, _registry(ran))) for _ in range(2)]
        for runner in runners:
            await runner.start()
        for runner in runners:
            await _idle(runner)
        job = await runners[0].schedule_job("mail", "once", tenant_id="acme")
        assert await runners[0].wait_for_result(job.job_id, tenant_id="acme", timeout=10) == "once"
        claimed = [r.worker.stats.claimed_by_notice for r in runners if r.worker is not None]
        for runner in runners:
            await runner.stop()
    assert ran == ["once"]
    assert sorted(claimed) == [0, 1]


async def _order_of(settings: Settings, enqueue: Any) -> tuple[list[Any], int]:
    """What a one-slot idle worker runs, in order, after ``enqueue(runner, conn)`` commits one transaction."""
    ran: list[Any] = []
    conf = settings.model_copy(update={"worker_concurrency": 1})
    async with PostgresRunner(conf, _registry(ran)) as runner:
        await runner.start()
        await _idle(runner)
        async with await psycopg.AsyncConnection.connect(DSN) as conn:
            await conn.execute(f"SET search_path = {settings.schema_name}")
            jobs = await enqueue(runner, conn)
        for job in jobs:
            await runner.wait_for_result(job.job_id, tenant_id="acme", timeout=10)
        worker = runner.worker
        assert worker is not None
        by_notice = worker.stats.claimed_by_notice
        await runner.stop()
    return ran, by_notice


async def test_more_notified_jobs_than_free_slots_go_in_priority_order(settings: Settings) -> None:
    """Two single jobs in one commit, one slot: the usual claim picks, so the higher priority runs first."""

    async def enqueue(runner: PostgresRunner, conn: Any) -> list[Any]:
        low = await runner.schedule_job("mail", "low", tenant_id="acme", connection=conn)
        high = await runner.schedule_job("mail", "high", tenant_id="acme", priority=5, connection=conn)
        return [low, high]

    assert await _order_of(settings, enqueue) == (["high", "low"], 0)


async def test_a_notified_job_does_not_overtake_work_no_notice_named(settings: Settings) -> None:
    """A batch (its notice names no job) and a single job in one commit: priority decides, not the notice."""

    async def enqueue(runner: PostgresRunner, conn: Any) -> list[Any]:
        low = await runner.schedule_job("mail", "low", tenant_id="acme", connection=conn)
        high = await runner.schedule_jobs("mail", ["high-1", "high-2"], tenant_id="acme", priority=5, connection=conn)
        return [low, *high]

    assert await _order_of(settings, enqueue) == (["high-1", "high-2", "low"], 0)


async def test_a_worker_with_caps_leaves_notified_jobs_to_the_usual_claim(settings: Settings) -> None:
    """Caps need the room the usual claim computes: no claim by key, and the job still runs."""
    ran: list[Any] = []
    conf = settings.model_copy(update={"tenant_concurrency": 1})
    async with PostgresRunner(conf, _registry(ran)) as runner:
        await runner.start()
        await _idle(runner)
        job = await runner.schedule_job("mail", "capped", tenant_id="acme")
        assert await runner.wait_for_result(job.job_id, tenant_id="acme", timeout=10) == "capped"
        worker = runner.worker
        assert worker is not None
        assert worker.stats.claimed_by_notice == 0
        await runner.stop()


async def test_a_claim_by_key_takes_only_what_the_usual_claim_would(settings: Settings) -> None:
    """Not a job in a paused queue, of a type this worker does not run, not yet due, taken, or unknown."""
    registry = _registry([])
    async with PostgresRunner(settings, registry) as runner:
        due = await runner.schedule_job("mail", "due", tenant_id="acme")
        paused = await runner.schedule_job("report", "paused", tenant_id="acme")
        await runner.pause_queue("reports")
        later = await runner.schedule_job_at("mail", "later", datetime.now(UTC) + timedelta(hours=1), tenant_id="acme")
        db = await Database.open(settings)
        try:
            limits = Limits(_registry([], reports=False), settings)
            limits.load()
            ops = QueueOps(db, "worker-1", settings.lease_duration)
            named = [("acme", j.job_id) for j in (due, paused, later)]
            named += [("other-tenant", due.job_id), ("acme", UUID(int=1))]
            first = await ops.claim_notified(named, limits.claim_filter())
            again = await ops.claim_notified(named, limits.claim_filter())
            # The same jobs, this time with a worker that runs reports: the queue is paused.
            everything = Limits(registry, settings)
            everything.load()
            paused_claim = await ops.claim_notified([("acme", paused.job_id)], everything.claim_filter())
        finally:
            await db.close()
        assert [(j.job_id, j.attempt) for j in first] == [(due.job_id, 1)]
        assert again == [] and paused_claim == []
        statuses = {j: (await runner.get_job_status(j, tenant_id="acme")).status for j in (paused.job_id, later.job_id)}
        assert statuses == {paused.job_id: JobStatus.QUEUED, later.job_id: JobStatus.QUEUED}
