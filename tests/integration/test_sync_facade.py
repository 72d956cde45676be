"""The blocking facade: one SyncRunner shared by many threads, its lifecycle, and what it refuses."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from algajobs import (
    JobContext,
    JobRegistry,
    JobStatus,
    PostgresRunner,
    RunnerState,
    RunnerStateError,
    Settings,
    SyncRunner,
    ValidationError,
)
from tests.helpers import eventually

THREADS = 8
JOBS_PER_THREAD = 5


@pytest.fixture
def ran(registry: JobRegistry) -> list[int]:
    """A ``square`` handler; each run appends its number."""
    runs: list[int] = []

    @registry.handler("square")
    async def square(ctx: JobContext, data: dict[str, int]) -> int:
        runs.append(data["n"])
        return data["n"] ** 2

    return runs


def loop_threads() -> list[threading.Thread]:
    """The facade loop threads alive now."""
    return [t for t in threading.enumerate() if t.name == "algajobs-sync-runner" and t.is_alive()]


async def test_eight_threads_schedule_and_wait_at_once(
    settings: Settings, registry: JobRegistry, ran: list[int]
) -> None:
    """Eight threads schedule through one facade at once and each gets its own results; a separate worker runs them."""
    start = threading.Barrier(THREADS, timeout=10)

    def client(jobs: SyncRunner, t: int) -> list[int]:
        start.wait()  # every thread calls at the same moment
        scheduled = [jobs.schedule_job("square", {"n": t * 100 + i}, tenant_id="t1") for i in range(JOBS_PER_THREAD)]
        return [jobs.wait_for_result(job.job_id, tenant_id="t1", timeout=30) for job in scheduled]

    def web_process() -> list[list[int]]:
        with SyncRunner(settings, registry) as jobs, ThreadPoolExecutor(THREADS) as pool:
            assert jobs.state is RunnerState.OPEN
            return list(pool.map(lambda t: client(jobs, t), range(THREADS)))

    async with PostgresRunner(settings, registry) as worker:
        await worker.start()
        results = await asyncio.wait_for(asyncio.to_thread(web_process), 60)
        counts = await worker.count_jobs_by_status(tenant_id="t1")
    assert results == [[(t * 100 + i) ** 2 for i in range(JOBS_PER_THREAD)] for t in range(THREADS)]
    assert sorted(ran) == sorted(t * 100 + i for t in range(THREADS) for i in range(JOBS_PER_THREAD))
    assert counts[JobStatus.COMPLETED] == THREADS * JOBS_PER_THREAD
    assert loop_threads() == []


async def test_lifecycle_processing_and_calls_after_close(
    settings: Settings, registry: JobRegistry, ran: list[int]
) -> None:
    """A script runs jobs on the facade's own worker; closed, it ends its thread and refuses calls until reopened."""

    def script() -> SyncRunner:
        jobs = SyncRunner(settings, registry)
        with pytest.raises(RunnerStateError, match="not open"):
            jobs.list_jobs(tenant_id="t1")
        with jobs:
            jobs.start()
            assert jobs.state is RunnerState.PROCESSING
            job = jobs.schedule_job("square", {"n": 3}, tenant_id="t1")
            assert jobs.wait_for_result(job.job_id, tenant_id="t1", timeout=30) == 9
            (batch,) = jobs.schedule_jobs("square", [{"n": 4}], tenant_id="t1")
            assert jobs.wait_for_result(batch.job_id, tenant_id="t1", timeout=30) == 16
            assert jobs.get_job_status(job.job_id, tenant_id="t1").status is JobStatus.COMPLETED
            assert jobs.count_jobs_by_status(tenant_id="t1")[JobStatus.COMPLETED] == 2
            assert jobs.is_healthy().healthy
            assert len(loop_threads()) == 1
            with pytest.raises(RunnerStateError, match="already open"):
                jobs.open()
        assert RunnerState(jobs.state) is RunnerState.CLOSED  # re-read: mypy narrowed it above
        assert loop_threads() == []
        with pytest.raises(RunnerStateError):
            jobs.schedule_job("square", {"n": 5}, tenant_id="t1")
        with pytest.raises(RunnerStateError):
            jobs.get_job_status(job.job_id, tenant_id="t1")
        jobs.close()  # closing again is a no-op
        with jobs:  # and it opens again, on a new loop thread
            assert jobs.get_job_status(job.job_id, tenant_id="t1").status is JobStatus.COMPLETED
        return jobs

    await asyncio.wait_for(asyncio.to_thread(script), 60)
    assert sorted(ran) == [3, 4]


async def test_close_cancels_a_waiting_call(
    settings: Settings, registry: JobRegistry, ran: list[int], conn: psycopg.AsyncConnection[Any]
) -> None:
    """A thread blocked in wait_for_result when close() begins gets RunnerStateError at once, not at its timeout."""
    jobs = SyncRunner(settings, registry)
    await asyncio.to_thread(jobs.open)
    try:
        job = await asyncio.to_thread(jobs.schedule_job, "square", {"n": 1}, tenant_id="t1")  # no worker: it waits
        waiter = asyncio.ensure_future(
            asyncio.to_thread(lambda: jobs.wait_for_result(job.job_id, tenant_id="t1", timeout=60))
        )

        async def listeners() -> int:
            pattern = f"LISTEN%algajobs_done_{settings.schema_name}%"
            cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s", [pattern])
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        await eventually(listeners, lambda n: n >= 1)  # the waiter is blocked on its LISTEN connection
    finally:
        await asyncio.wait_for(asyncio.to_thread(jobs.close), 30)
    with pytest.raises(RunnerStateError, match="closed while"):
        await asyncio.wait_for(waiter, 10)
    assert ran == []
    assert loop_threads() == []


async def test_transactional_enqueue_is_refused(settings: Settings, registry: JobRegistry, ran: list[int]) -> None:
    """connection= cannot join a sync transaction: ValidationError, and nothing is written."""

    def script() -> list[Any]:
        with SyncRunner(settings, registry) as jobs, psycopg.connect(settings.database_url) as sync_conn:
            with pytest.raises(ValidationError, match="transaction"):
                jobs.schedule_job("square", {"n": 1}, tenant_id="t1", connection=sync_conn)  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="transaction"):
                jobs.schedule_jobs("square", [{"n": 1}], tenant_id="t1", connection=sync_conn)  # type: ignore[arg-type]
            return list(jobs.list_jobs(tenant_id="t1"))

    assert await asyncio.wait_for(asyncio.to_thread(script), 60) == []
