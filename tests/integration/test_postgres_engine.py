"""The PostgreSQL engine end to end against a real server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, RetryPolicy, RunnerType, Settings
from algajobs.fallback.queue import Completion, Held, QueueOps
from tests.helpers import eventually
from tests.integration.jobs import register_all

pytestmark = pytest.mark.asyncio


@pytest.fixture
def seen(registry: JobRegistry) -> list[Any]:
    """What handlers observed, in order."""
    observed: list[Any] = []
    register_all(registry, observed)
    return observed


async def finished(runner: PostgresRunner, job_id: Any, tenant: str = "t1") -> Any:
    """Wait until the job leaves the live states and return it."""
    return await eventually(
        lambda: runner.get_job_status(job_id, tenant_id=tenant), lambda info: info.status.is_finished
    )


async def test_immediate_job_runs_and_reports(runner: PostgresRunner, seen: list[Any]) -> None:
    """A job runs once, its progress, detail and result land in the monitoring tables."""
    await runner.start()
    result = await runner.schedule_job("invoice", {"billing_cycle_id": "c1"}, tenant_id="t1", user_id="u1")
    assert result.runner_type is RunnerType.POSTGRES
    info = await finished(runner, result.job_id)
    assert info.status is JobStatus.COMPLETED
    assert (info.progress, info.result, info.attempts, info.user_id) == (100, {"pages": 3}, 1, "u1")
    assert info.started_at is not None and info.completed_at is not None
    details = await runner.get_job_details(result.job_id, tenant_id="t1")
    assert [(d.step_name, d.status, d.result) for d in details] == [("render", JobStatus.COMPLETED, {"pages": 3})]
    assert seen == [(result.job_id, "c1")]


async def test_plain_handlers_run_off_the_loop(runner: PostgresRunner, seen: list[Any]) -> None:
    """A plain def handler runs in a thread and can still report progress."""
    await runner.start()
    result = await runner.schedule_job("plain", [1, 2], tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert (info.status, info.result) == (JobStatus.COMPLETED, [1, 2])


async def test_delayed_job_waits_for_its_time(runner: PostgresRunner, seen: list[Any]) -> None:
    """schedule_job_at holds the job until run_at, then runs it promptly."""
    await runner.start()
    run_at = datetime.now(UTC) + timedelta(seconds=2)
    result = await runner.schedule_job_at("record", "later", run_at, tenant_id="t1")
    # A job due now runs first: proof the worker is fetching while the delayed one waits.
    await finished(runner, (await runner.schedule_job("record", "now", tenant_id="t1")).job_id)
    if datetime.now(UTC) < run_at:
        assert (await runner.get_job_status(result.job_id, tenant_id="t1")).status is JobStatus.QUEUED
    info = await finished(runner, result.job_id)
    assert info.started_at is not None and info.started_at >= run_at


async def test_priority_orders_pickup(settings: Any, registry: JobRegistry, seen: list[Any]) -> None:
    """With one slot, higher priority jobs run first."""
    async with PostgresRunner(settings.model_copy(update={"worker_concurrency": 1}), registry) as runner:
        for priority in (0, 5, 1, 9):
            await runner.schedule_job("record", priority, tenant_id="t1", priority=priority)
        await runner.start()
        await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n == 4)
    assert [data for _, data in seen] == [9, 5, 1, 0]


async def test_singleton_key_allows_one_live_job(runner: PostgresRunner, seen: list[Any]) -> None:
    """A second job with a live singleton key returns the first; after it finishes, the key frees."""
    first = await runner.schedule_job("record", 1, tenant_id="t1", singleton_key="k")
    second = await runner.schedule_job("record", 2, tenant_id="t1", singleton_key="k")
    assert (second.job_id, second.created) == (first.job_id, False)
    await runner.start()
    await finished(runner, first.job_id)
    third = await runner.schedule_job("record", 3, tenant_id="t1", singleton_key="k")
    assert third.created and third.job_id != first.job_id


async def test_same_job_id_is_idempotent(runner: PostgresRunner, seen: list[Any]) -> None:
    """Scheduling the same job id twice writes one job."""
    first = await runner.schedule_job("record", 1, tenant_id="t1", job_id="0b4a3c1e-3f5c-4a36-9d7b-4d1c0b5e9a11")
    again = await runner.schedule_job("record", 1, tenant_id="t1", job_id=first.job_id)
    assert not again.created and again.job_id == first.job_id
    assert len(await runner.list_jobs(tenant_id="t1")) == 1


async def test_retries_back_off_then_succeed(runner: PostgresRunner, seen: list[Any]) -> None:
    """A failing handler is retried with backoff and its attempts are recorded."""
    await runner.start()
    result = await runner.schedule_job("flaky", {"fail_times": 2}, tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert (info.status, info.attempts, info.result) == (JobStatus.COMPLETED, 3, 3)
    assert [attempt for _, attempt in seen] == [1, 2, 3]


async def test_retries_exhausted_keep_the_failed_job(runner: PostgresRunner, seen: list[Any]) -> None:
    """After max_attempts the job is failed with the last error, and can be retried by hand."""
    await runner.start()
    result = await runner.schedule_job("flaky", {"fail_times": 10}, tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert (info.status, info.attempts) == (JobStatus.FAILED, 3)
    assert info.error == "RuntimeError: attempt 3 fails"
    await runner.retry_job(result.job_id, tenant_id="t1")
    again = await finished(runner, result.job_id)
    assert again.status is JobStatus.FAILED
    assert again.metadata["manual_retries"] == 1
    assert len(seen) == 6


async def test_non_retryable_error_fails_at_once(
    runner: PostgresRunner, seen: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """An error type listed non-retryable ends the job after one attempt; the log record names the job."""
    await runner.start()
    result = await runner.schedule_job("fatal", None, tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert (info.status, info.attempts) == (JobStatus.FAILED, 1)
    (record,) = [r for r in caplog.records if r.name == "algajobs.worker"]
    assert (record.job_id, record.tenant_id) == (str(result.job_id), "t1")  # type: ignore[attr-defined]
    assert info.error is not None and info.error.startswith("KeyError")


async def test_an_error_message_postgresql_cannot_hold_is_stored_escaped(
    runner: PostgresRunner, seen: list[Any]
) -> None:
    """A NUL in the handler's error is written as an escape; before, the outcome could not be written at all."""
    await runner.start()
    result = await runner.schedule_job("garbled", None, tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert (info.status, info.attempts, info.error) == (JobStatus.FAILED, 1, "ValueError: bad\\x00byte")


async def test_timeout_fails_the_attempt(runner: PostgresRunner, seen: list[Any]) -> None:
    """A handler running past its timeout is stopped and the job fails."""
    await runner.start()
    result = await runner.schedule_job("slow", None, tenant_id="t1")
    info = await finished(runner, result.job_id)
    assert info.status is JobStatus.FAILED
    assert info.error is not None and "timeout" in info.error


async def test_cancel_queued_job_at_once(runner: PostgresRunner, seen: list[Any]) -> None:
    """A queued job is cancelled immediately and never runs."""
    result = await runner.schedule_job("record", 1, tenant_id="t1")
    assert await runner.cancel_job(result.job_id, tenant_id="t1")
    after = await runner.schedule_job("record", 2, tenant_id="t1")
    await runner.start()
    await finished(runner, after.job_id)  # the worker got past the cancelled job
    assert (await runner.get_job_status(result.job_id, tenant_id="t1")).status is JobStatus.CANCELLED
    assert [data for _, data in seen] == [2]
    assert not await runner.cancel_job(result.job_id, tenant_id="t1")


async def test_cancel_running_job_cooperatively(runner: PostgresRunner, seen: list[Any]) -> None:
    """A running handler sees ctx.cancelled promptly and the job ends cancelled."""
    await runner.start()
    result = await runner.schedule_job("cooperative", None, tenant_id="t1")
    await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n == 1)
    assert await runner.cancel_job(result.job_id, tenant_id="t1")
    info = await eventually(
        lambda: runner.get_job_status(result.job_id, tenant_id="t1"),
        lambda i: i.status.is_finished,
        within=2.0,
    )
    assert info.status is JobStatus.CANCELLED


async def test_recurring_interval_fires_and_reregistration_updates(runner: PostgresRunner, seen: list[Any]) -> None:
    """An interval schedule fires repeatedly; registering again updates, never duplicates."""
    first = await runner.schedule_recurring_job("record", "a", "1 second", tenant_id="t1")
    second = await runner.schedule_recurring_job("record", "b", "1 second", tenant_id="t1")
    assert second.job_id == first.job_id and not second.created
    schedule = await runner.get_job_status(first.job_id, tenant_id="t1")
    assert schedule.status is JobStatus.ACTIVE and schedule.metadata["schedule"] == "1 second"
    await runner.start()
    await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n >= 2, within=6)
    assert {data for _, data in seen} == {"b"}
    assert await runner.cancel_job(first.job_id, tenant_id="t1")
    assert (await runner.get_job_status(first.job_id, tenant_id="t1")).status is JobStatus.CANCELLED


async def test_cron_schedule_is_registered(runner: PostgresRunner, seen: list[Any]) -> None:
    """A cron schedule stores its next tick as the row's run_at."""
    result = await runner.schedule_recurring_job("record", None, "0 0 * * *", tenant_id="t1")
    info = await runner.get_job_status(result.job_id, tenant_id="t1")
    assert info.run_at.hour == 0 and info.run_at.minute == 0 and info.run_at > datetime.now(UTC)


async def test_monitoring_lists_filters_pages_and_counts(runner: PostgresRunner, seen: list[Any]) -> None:
    """list_jobs filters by status and type with paging; counts cover every status."""
    for n in range(5):
        await runner.schedule_job("record", n, tenant_id="t1")
    plain = await runner.schedule_job("plain", 0, tenant_id="t1")
    await runner.cancel_job(plain.job_id, tenant_id="t1")
    assert len(await runner.list_jobs(tenant_id="t1", job_name="record")) == 5
    page = await runner.list_jobs(tenant_id="t1", job_name="record", limit=2, offset=4)
    assert len(page) == 1
    cancelled = await runner.list_jobs(tenant_id="t1", status="cancelled")
    assert [j.job_id for j in cancelled] == [plain.job_id]
    counts = await runner.count_jobs_by_status(tenant_id="t1")
    assert counts[JobStatus.QUEUED] == 5 and counts[JobStatus.CANCELLED] == 1
    assert counts[JobStatus.FAILED] == 0


async def test_batch_enqueue_runs_every_job(runner: PostgresRunner, seen: list[Any]) -> None:
    """schedule_jobs writes many jobs in one statement; all complete."""
    results = await runner.schedule_jobs("record", list(range(300)), tenant_id="t1")
    assert len({r.job_id for r in results}) == 300
    await runner.start()
    await eventually(lambda: runner.count_jobs_by_status(tenant_id="t1"), lambda c: c[JobStatus.COMPLETED] == 300)
    assert sorted(data for _, data in seen) == list(range(300))


async def test_prune_removes_old_finished_jobs(
    runner: PostgresRunner, seen: list[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """Finished jobs past retention are deleted with their details; live ones stay."""
    await runner.start()
    done = await runner.schedule_job("invoice", {"billing_cycle_id": "c"}, tenant_id="t1")
    await finished(runner, done.job_id)
    live = await runner.schedule_job_at("record", 1, datetime.now(UTC) + timedelta(hours=1), tenant_id="t1")
    await conn.execute("UPDATE jobs SET completed_at = now() - interval '30 days' WHERE job_id = %s", [done.job_id])
    assert await runner.prune() == 1
    remaining = await runner.list_jobs(tenant_id="t1")
    assert [j.job_id for j in remaining] == [live.job_id]
    cur = await conn.execute("SELECT count(*) FROM job_details")
    assert (await cur.fetchone()) == (0,)


async def test_stop_leaves_nothing_processing(runner: PostgresRunner, seen: list[Any]) -> None:
    """stop() with a short grace hands unfinished jobs back as queued, attempt not spent."""
    await runner.start()
    result = await runner.schedule_job("cooperative", None, tenant_id="t1")
    await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n == 1)
    assert runner.worker is not None
    await runner.worker.stop(grace=0.1)
    info = await runner.get_job_status(result.job_id, tenant_id="t1")
    assert (info.status, info.attempts) == (JobStatus.QUEUED, 0)


async def test_health_reports_postgres(runner: PostgresRunner) -> None:
    """is_healthy pings PostgreSQL."""
    report = await runner.is_healthy()
    assert report.healthy and report.engines[0].engine is RunnerType.POSTGRES


async def test_cancel_interrupts_an_async_handler_that_ignores_the_flag(
    runner: PostgresRunner, registry: JobRegistry
) -> None:
    """As on Temporal, a cancel interrupts a running async handler with CancelledError; the job ends cancelled."""
    interrupted = asyncio.Event()
    started = asyncio.Event()

    @registry.handler("stubborn")
    async def stubborn(ctx: JobContext, data: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await runner.start()
    job = await runner.schedule_job("stubborn", None, tenant_id="t1")
    await asyncio.wait_for(started.wait(), 10)
    assert await runner.cancel_job(job.job_id, tenant_id="t1")
    info = await eventually(
        lambda: runner.get_job_status(job.job_id, tenant_id="t1"), lambda i: i.status.is_finished, within=5.0
    )
    assert info.status is JobStatus.CANCELLED
    assert interrupted.is_set()


async def test_a_worker_never_claims_a_job_type_it_has_no_handler_for(settings: Settings, seen: list[Any]) -> None:
    """During a rolling deploy an old worker leaves a new job type queued; a worker that has it runs it."""
    old, new = JobRegistry(), JobRegistry()
    for registry in (old, new):

        @registry.handler("known")
        async def known(ctx: JobContext, data: Any) -> None:
            seen.append(("known", data))

    @new.handler("added-in-this-release")
    async def added(ctx: JobContext, data: Any) -> None:
        seen.append(("added", data))

    async with PostgresRunner(settings, new) as scheduler, PostgresRunner(settings, old) as old_worker:
        fresh = await scheduler.schedule_job("added-in-this-release", 1, tenant_id="t1")
        before = await scheduler.schedule_job("known", 2, tenant_id="t1")
        await old_worker.start()
        await finished(scheduler, before.job_id)  # the old worker is fetching...
        info = await scheduler.get_job_status(fresh.job_id, tenant_id="t1")
        assert (info.status, info.attempts) == (JobStatus.QUEUED, 0)  # ...and left the new type alone
        await scheduler.start()
        assert (await finished(scheduler, fresh.job_id)).status is JobStatus.COMPLETED
    assert sorted(seen) == [("added", 1), ("known", 2)]


async def test_a_busy_worker_does_not_keep_alive_a_job_it_gave_up_on(
    runner: PostgresRunner, registry: JobRegistry, seen: list[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """A row this worker holds but no longer runs (its outcome could not be written) is requeued after its lease."""
    release = asyncio.Event()

    @registry.handler("busy")
    async def busy(ctx: JobContext, data: Any) -> None:
        await release.wait()

    await runner.start()
    keeps_busy = await runner.schedule_job("busy", None, tenant_id="t1")
    await eventually(
        lambda: runner.get_job_status(keeps_busy.job_id, tenant_id="t1"), lambda i: i.status is JobStatus.PROCESSING
    )
    orphan = await runner.schedule_job_at("record", "orphan", datetime.now(UTC) + timedelta(hours=1), tenant_id="t1")
    assert runner.worker is not None
    # As after a failed outcome write: processing under this worker's id, but not among its running jobs.
    await conn.execute(
        "UPDATE jobs SET status = 'processing', attempts = 1, run_at = now(), worker_id = %s,"
        " lease_expires_at = now() + interval '1 second' WHERE job_id = %s",
        [runner.worker.worker_id, orphan.job_id],
    )
    info = await eventually(
        lambda: runner.get_job_status(orphan.job_id, tenant_id="t1"), lambda i: i.status.is_finished, within=15
    )
    assert info.status is JobStatus.COMPLETED
    assert (await runner.get_job_status(keeps_busy.job_id, tenant_id="t1")).status is JobStatus.PROCESSING
    release.set()


async def test_completing_a_large_batch_notifies_in_chunks(
    runner: PostgresRunner, conn: psycopg.AsyncConnection[Any]
) -> None:
    """1,000 completions in one statement: the done notices stay under PostgreSQL's 8,000-byte limit."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, worker_id)"
        " SELECT 't1', gen_random_uuid(), 'record', 'processing', 'postgres', 'w' FROM generate_series(1, 1000)"
    )
    cur = await conn.execute("SELECT tenant, job_id FROM jobs WHERE worker_id = 'w'")
    held = await cur.fetchall()
    done = [Completion(Held(t, j, 0), None) for t, j in held]
    await QueueOps(runner.store.db, "w", timedelta(seconds=30)).complete(done)
    counts = await runner.count_jobs_by_status(tenant_id="t1")
    assert counts[JobStatus.COMPLETED] == 1000


async def test_a_worker_that_claims_its_own_job_again_keeps_the_new_attempt(
    settings: Settings, conn: psycopg.AsyncConnection[Any]
) -> None:
    """Attempt 1's lease lapsed and this worker took the job again: attempt 1's result is not written.

    Attempt 2 stays held (heartbeated) until it finishes.
    """
    registry = JobRegistry()
    started: dict[int, asyncio.Event] = {1: asyncio.Event(), 2: asyncio.Event()}
    release: dict[int, asyncio.Event] = {1: asyncio.Event(), 2: asyncio.Event()}
    calls: list[int] = []

    @registry.handler("slow", retry=RetryPolicy(max_attempts=3))
    async def slow(ctx: JobContext, data: Any) -> str:
        calls.append(ctx.attempt)
        started[ctx.attempt].set()
        await release[ctx.attempt].wait()
        return f"attempt {ctx.attempt}"

    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        job = await runner.schedule_job("slow", None, tenant_id="t1")
        await asyncio.wait_for(started[1].wait(), 10)
        # What recover_expired does once attempt 1's lease has lapsed; the requeue wakes the worker.
        await conn.execute(
            "UPDATE jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL WHERE job_id = %s",
            [job.job_id],
        )
        await asyncio.wait_for(started[2].wait(), 10)
        release[1].set()
        # Past a whole lease (3 s) and a maintenance round: attempt 2 is still held, nothing re-ran it.
        await asyncio.sleep(settings.lease_duration.total_seconds() + 2)
        info = await runner.get_job_status(job.job_id, tenant_id="t1")
        assert (info.status, info.attempts, info.result) == (JobStatus.PROCESSING, 2, None)
        release[2].set()
        info = await finished(runner, job.job_id)
    assert (info.status, info.attempts, info.result) == (JobStatus.COMPLETED, 2, "attempt 2")
    assert calls == [1, 2]
