"""Named queues, worker presence, pause/resume and limits on the PostgreSQL engine (DESIGN §11)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, RunnerType, Settings, ValidationError
from tests.helpers import eventually


def _recording(registry: JobRegistry, name: str, log: list[Any], **options: Any) -> None:
    @registry.handler(name, **options)
    async def handler(ctx: JobContext, data: Any) -> Any:
        log.append((name, ctx.tenant_id, data))
        return data


async def _statuses(runner: PostgresRunner, tenant: str = "t1") -> dict[JobStatus, int]:
    counts = await runner.count_jobs_by_status(tenant_id=tenant)
    return {status: n for status, n in counts.items() if n}


async def test_a_worker_serves_only_its_queues_and_health_names_what_waits(settings: Settings) -> None:
    """A worker of queue 'default' leaves 'billing' jobs queued (named by health) until a billing worker runs."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "mail", ran)
    _recording(registry, "invoice", ran, queue="billing")
    default_only = settings.model_copy(update={"queues": ("default",)})
    async with PostgresRunner(default_only, registry) as runner:
        await runner.start()
        await runner.schedule_job("invoice", 1, tenant_id="t1")
        mail = await runner.schedule_job("mail", 2, tenant_id="t1")
        assert await runner.wait_for_result(mail.job_id, tenant_id="t1", timeout=10) == 2
        await asyncio.sleep(1.0)  # several poll intervals: the billing job is not claimed
        assert ran == [("mail", "t1", 2)]
        report = await runner.is_healthy()
        assert report.healthy
        assert [str(u) for u in report.unserved] == ["no worker for type 'invoice' in queue 'billing' (postgres)"]
        async with PostgresRunner(settings.model_copy(update={"queues": ("billing",)}), registry) as billing:
            await billing.start()
            await eventually(lambda: _statuses(runner), lambda c: c == {JobStatus.COMPLETED: 2})
            assert (await runner.is_healthy()).unserved == ()
    assert sorted(ran) == [("invoice", "t1", 1), ("mail", "t1", 2)]


async def test_a_type_no_worker_has_waits_instead_of_failing(settings: Settings) -> None:
    """A rolling deploy: jobs of a type the running worker lacks stay queued, then run on the new worker."""
    ran: list[Any] = []
    old, new = JobRegistry(), JobRegistry()
    _recording(old, "mail", ran)
    _recording(new, "mail", ran)
    _recording(new, "report", ran)
    async with PostgresRunner(settings, old) as old_worker, PostgresRunner(settings, new) as scheduler:
        await old_worker.start()
        jobs = await scheduler.schedule_jobs("report", list(range(20)), tenant_id="t1")
        await scheduler.schedule_job("mail", "m", tenant_id="t1")
        await eventually(lambda: _statuses(scheduler), lambda c: c.get(JobStatus.COMPLETED) == 1)
        await asyncio.sleep(1.0)
        assert await _statuses(scheduler) == {JobStatus.COMPLETED: 1, JobStatus.QUEUED: 20}
        unserved = (await scheduler.is_healthy()).unserved
        assert [(u.queue, u.job_name, u.engine) for u in unserved] == [("default", "report", RunnerType.POSTGRES)]
        await scheduler.start()  # the new release's worker
        await old_worker.stop()
        await eventually(lambda: _statuses(scheduler), lambda c: c == {JobStatus.COMPLETED: 21})
        for job in jobs:
            info = await scheduler.get_job_status(job.job_id, tenant_id="t1")
            assert (info.status, info.attempts) == (JobStatus.COMPLETED, 1)
    assert sorted(d for n, _, d in ran if n == "report") == list(range(20))


async def test_a_paused_queue_runs_nothing_until_resumed(settings: Settings) -> None:
    """Paused: jobs wait queued and health shows the pause; resumed: all of them run."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "mail", ran)
    _recording(registry, "invoice", ran, queue="billing")
    async with PostgresRunner(settings, registry) as runner:
        assert await runner.pause_queue("billing", paused_by="ops", reason="month-end freeze")
        assert not await runner.pause_queue("billing")  # already paused
        await runner.start()
        await runner.schedule_jobs("invoice", list(range(10)), tenant_id="t1")
        mail = await runner.schedule_job("mail", "m", tenant_id="t1")
        assert await runner.wait_for_result(mail.job_id, tenant_id="t1", timeout=10) == "m"
        await asyncio.sleep(1.0)
        assert await _statuses(runner) == {JobStatus.COMPLETED: 1, JobStatus.QUEUED: 10}
        (paused,) = (await runner.is_healthy()).paused_queues
        assert (paused.queue, paused.paused_by, paused.reason) == ("billing", "ops", "month-end freeze")
        started = time.monotonic()
        assert await runner.resume_queue("billing")
        await eventually(lambda: _statuses(runner), lambda c: c == {JobStatus.COMPLETED: 11})
        # Woken by the resume's notice, not by the next poll.
        assert time.monotonic() - started < settings.poll_interval.total_seconds() + 2
        assert not await runner.resume_queue("billing")
        assert await runner.paused_queues() == []
    assert sorted(d for n, _, d in ran if n == "invoice") == list(range(10))


async def test_a_small_tenant_is_served_alongside_a_large_backlog(settings: Settings) -> None:
    """Tenant A has 2,000 jobs queued first, B 10: B's jobs start within the first claim rounds, not after A's."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "work", ran)
    conf = settings.model_copy(update={"worker_concurrency": 10, "fetch_batch_size": 10})
    async with PostgresRunner(conf, registry) as runner:
        for chunk in range(4):
            await runner.schedule_jobs("work", list(range(chunk * 500, chunk * 500 + 500)), tenant_id="tenant-a")
        await runner.schedule_jobs("work", list(range(10)), tenant_id="tenant-b")
        await runner.start()
        await eventually(lambda: asyncio.sleep(0, result=len(ran)), lambda n: n >= 60, within=30)
        await runner.stop()
    first = [tenant for _, tenant, _ in ran[:40]]
    assert first.count("tenant-b") == 10, first


async def test_priority_overtakes_a_backlog(settings: Settings) -> None:
    """High-priority jobs scheduled after a backlog of 300 run before the rest of it."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "work", ran)
    conf = settings.model_copy(update={"worker_concurrency": 1, "fetch_batch_size": 1})
    async with PostgresRunner(conf, registry) as runner:
        await runner.schedule_jobs("work", ["low"] * 300, tenant_id="t1")
        for n in range(5):
            await runner.schedule_job("work", f"high-{n}", tenant_id="t1", priority=10)
        await runner.start()
        await eventually(lambda: asyncio.sleep(0, result=len(ran)), lambda n: n >= 10, within=30)
        await runner.stop()
    assert [d for _, _, d in ran[:5]] == [f"high-{n}" for n in range(5)]


async def test_concurrency_caps_per_type_queue_and_tenant(settings: Settings) -> None:
    """At most 2 'capped' jobs, 3 'slow' queue jobs and 4 jobs of one tenant run at once in a worker."""
    running: dict[str, int] = {"capped": 0, "slow": 0, "tenant": 0}
    peaks = dict.fromkeys(running, 0)
    registry = JobRegistry()

    def track(key: str, delta: int) -> None:
        running[key] += delta
        peaks[key] = max(peaks[key], running[key])

    @registry.handler("capped", concurrency=2)
    async def capped(ctx: JobContext, data: Any) -> None:
        track("capped", 1)
        await asyncio.sleep(0.15)
        track("capped", -1)

    @registry.handler("in-slow-queue", queue="slow")
    async def in_slow_queue(ctx: JobContext, data: Any) -> None:
        track("slow", 1)
        await asyncio.sleep(0.15)
        track("slow", -1)

    @registry.handler("per-tenant")
    async def per_tenant(ctx: JobContext, data: Any) -> None:
        if ctx.tenant_id == "busy":
            track("tenant", 1)
        await asyncio.sleep(0.15)
        if ctx.tenant_id == "busy":
            track("tenant", -1)

    registry.limit_queue("slow", concurrency=3)
    conf = settings.model_copy(update={"worker_concurrency": 20, "tenant_concurrency": 4})
    async with PostgresRunner(conf, registry) as runner:
        await runner.schedule_jobs("capped", list(range(8)), tenant_id="t1")
        await runner.schedule_jobs("in-slow-queue", list(range(9)), tenant_id="t2")
        await runner.schedule_jobs("per-tenant", list(range(12)), tenant_id="busy")
        await runner.start()
        for tenant in ("t1", "t2", "busy"):
            await eventually(
                lambda t=tenant: _statuses(runner, t), lambda c: set(c) == {JobStatus.COMPLETED}, within=30
            )
    assert peaks == {"capped": 2, "slow": 3, "tenant": 4}


@pytest.mark.parametrize("queue", ["", "Billing", "bill ing", "x" * 64, 7, None, "billing\n"])
def test_bad_queue_names_are_refused(queue: Any) -> None:
    """Queue names are short lower-case identifiers: they become part of Temporal task-queue names."""
    with pytest.raises(ValidationError, match="queue"):
        JobRegistry().handler("job", queue=queue)


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "3", 100_001])
def test_bad_concurrency_caps_are_refused(limit: Any) -> None:
    """Caps are positive ints."""
    with pytest.raises(ValidationError, match="concurrency"):
        JobRegistry().handler("job", concurrency=limit)
    with pytest.raises(ValidationError, match="concurrency"):
        JobRegistry().limit_queue("q", concurrency=limit)


async def test_tenants_with_nothing_claimable_do_not_hide_a_due_job(settings: Settings) -> None:
    """Two slots; tenants a1 and a2 hold only delayed jobs or another service's: tenant zz's due job still runs."""
    ran: list[Any] = []
    registry, other = JobRegistry(), JobRegistry()
    _recording(registry, "work", ran)
    _recording(other, "theirs", ran)
    conf = settings.model_copy(update={"worker_concurrency": 2, "fetch_batch_size": 2})
    async with PostgresRunner(conf, registry) as runner, PostgresRunner(conf, other) as elsewhere:
        later = datetime.now(UTC) + timedelta(hours=1)
        await runner.schedule_job_at("work", "later", later, tenant_id="a1")
        await elsewhere.schedule_job("theirs", "not ours", tenant_id="a2")
        due = await runner.schedule_job("work", "now", tenant_id="zz")
        await runner.start()
        assert await runner.wait_for_result(due.job_id, tenant_id="zz", timeout=10) == "now"


async def test_a_tenant_at_its_cap_leaves_free_slots_to_others(settings: Settings) -> None:
    """Cap 1 per tenant, 2 slots: A's long jobs hold one slot, B's short jobs flow through the other."""
    registry = JobRegistry()

    @registry.handler("long")
    async def long(ctx: JobContext, data: Any) -> None:
        await asyncio.sleep(3)

    @registry.handler("short")
    async def short(ctx: JobContext, data: Any) -> None:
        await asyncio.sleep(0.1)

    conf = settings.model_copy(update={"worker_concurrency": 2, "fetch_batch_size": 2, "tenant_concurrency": 1})
    async with PostgresRunner(conf, registry) as runner:
        await runner.schedule_jobs("long", [1, 2, 3], tenant_id="a")
        quick = await runner.schedule_jobs("short", [1, 2, 3, 4, 5], tenant_id="b")
        await runner.start()
        started = time.monotonic()
        for job in quick:
            await runner.wait_for_result(job.job_id, tenant_id="b", timeout=10)
        assert time.monotonic() - started < 2.5  # not one B job per A job (that took 12 s)
        await runner.stop()


async def test_a_stopped_worker_no_longer_counts_as_serving(settings: Settings) -> None:
    """Presence follows the worker: once stopped, its types show as unserved again."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "mail", ran)
    async with PostgresRunner(settings, registry) as runner:
        await runner.pause_queue("default")  # keeps a job queued without stopping the worker
        await runner.schedule_job("mail", 1, tenant_id="t1")
        await runner.start()
        await eventually(lambda: runner.is_healthy(), lambda r: r.unserved == ())
        await runner.stop()
        report = await runner.is_healthy()
        assert [(u.job_name, u.paused) for u in report.unserved] == [("mail", True)]
