"""Named queues, rolling deploys and pause/resume on the Temporal engine (time-skipping test server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from algajobs import JobContext, JobRegistry, JobStatus, RetryPolicy, RunnerType, Settings, TemporalRunner
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import temporal_cli_path, test_server_path
from algajobs.workflows.contracts import GenericJobResult, JobState
from tests.helpers import eventually


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server per test."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        yield environment


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A throwaway Temporal dev server: a real server moves a stopped worker's sticky tasks to the others."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment


@pytest.fixture
def conf(settings: Settings) -> Settings:
    """Temporal-only settings on a task queue of this test's own."""
    return settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})


def _recording(registry: JobRegistry, name: str, log: list[Any], **options: Any) -> None:
    @registry.handler(name, **options)
    async def handler(ctx: JobContext, data: Any) -> Any:
        log.append((name, data))
        return data


async def _result(env: WorkflowEnvironment, job_id: uuid.UUID) -> GenericJobResult:
    handle = env.client.get_workflow_handle(workflow_id_for(job_id), result_type=GenericJobResult)
    return await asyncio.wait_for(handle.result(), 60)


async def _status(runner: TemporalRunner, job_id: uuid.UUID) -> JobStatus:
    return (await runner.get_job_status(job_id, tenant_id="t1")).status


async def test_a_queue_is_its_own_task_queue(env: WorkflowEnvironment, conf: Settings) -> None:
    """A 'billing' job's workflow runs on '<TEMPORAL_TASK_QUEUE>.billing'; the default queue keeps the base name."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "mail", ran)
    _recording(registry, "invoice", ran, queue="billing")
    async with TemporalRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        invoice = await runner.schedule_job("invoice", 1, tenant_id="t1")
        mail = await runner.schedule_job("mail", 2, tenant_id="t1")
        assert (await _result(env, invoice.job_id)).success and (await _result(env, mail.job_id)).success
        described = await env.client.get_workflow_handle(workflow_id_for(invoice.job_id)).describe()
        assert described.task_queue == f"{conf.temporal_task_queue}.billing"
        described = await env.client.get_workflow_handle(workflow_id_for(mail.job_id)).describe()
        assert described.task_queue == conf.temporal_task_queue
    assert sorted(ran) == [("invoice", 1), ("mail", 2)]


async def test_a_queue_without_a_worker_waits_and_health_says_so(env: WorkflowEnvironment, conf: Settings) -> None:
    """No worker polls the billing task queue: the job waits queued and health names it, until one does."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "invoice", ran, queue="billing")
    _recording(registry, "mail", ran)
    async with TemporalRunner(conf.model_copy(update={"queues": ("default",)}), registry, client=env.client) as runner:
        await runner.start()
        job = await runner.schedule_job("invoice", 1, tenant_id="t1")
        await asyncio.sleep(1.0)
        assert await _status(runner, job.job_id) is JobStatus.QUEUED
        unserved = (await runner.is_healthy()).unserved
        assert [(u.queue, u.job_name, u.engine) for u in unserved] == [("billing", "invoice", RunnerType.TEMPORAL)]
        billing_conf = conf.model_copy(update={"queues": ("billing",)})
        async with TemporalRunner(billing_conf, registry, client=env.client) as billing:
            await billing.start()
            assert (await _result(env, job.job_id)).success
    assert ran == [("invoice", 1)]


async def test_a_rolling_deploy_on_temporal_loses_nothing(dev_env: WorkflowEnvironment, conf: Settings) -> None:
    """The running worker lacks the new type: its jobs wait (queued, none failed), then run on the new release.

    On the dev server: the time-skipping test server never hands a stopped worker's sticky tasks to another.
    """
    env = dev_env
    ran: list[Any] = []
    old, new = JobRegistry(), JobRegistry()
    _recording(old, "mail", ran)
    _recording(new, "mail", ran)
    _recording(new, "report", ran)
    async with (
        TemporalRunner(conf, old, client=env.client) as old_release,
        TemporalRunner(conf, new, client=env.client) as new_release,
    ):
        await old_release.start()
        jobs = [await new_release.schedule_job("report", n, tenant_id="t1") for n in range(10)]
        await asyncio.sleep(1.5)  # the old worker saw them: it claims none
        assert {await _status(new_release, j.job_id) for j in jobs} == {JobStatus.QUEUED}
        state = await env.client.get_workflow_handle(workflow_id_for(jobs[0].job_id)).query("getJobState")
        assert JobState.model_validate(state).step == "waiting"
        await new_release.start()
        await old_release.stop()
        # Our own wait: a run that continued as new is followed through the row, not the history.
        results = [await new_release.wait_for_result(j.job_id, tenant_id="t1", timeout=60) for j in jobs]
        assert results == list(range(10))
        for job in jobs:
            info = await new_release.get_job_status(job.job_id, tenant_id="t1")
            assert (info.status, info.attempts) == (JobStatus.COMPLETED, 1)
    assert sorted(d for n, d in ran if n == "report") == list(range(10))


async def test_a_paused_queue_starts_nothing_on_temporal_until_resumed(
    env: WorkflowEnvironment, conf: Settings
) -> None:
    """A job of a paused queue waits queued (its run re-checks with backoff); after resume it runs once."""
    ran: list[Any] = []
    registry = JobRegistry()
    _recording(registry, "invoice", ran, queue="billing")
    async with TemporalRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        assert await runner.pause_queue("billing", reason="audit")
        job = await runner.schedule_job("invoice", 7, tenant_id="t1")
        await env.sleep(120)  # time-skipped: many re-checks
        assert await _status(runner, job.job_id) is JobStatus.QUEUED
        state = await env.client.get_workflow_handle(workflow_id_for(job.job_id)).query("getJobState")
        assert JobState.model_validate(state).message == "waiting: its queue is paused"
        assert ran == []
        assert await runner.resume_queue("billing")
        assert (await _result(env, job.job_id)).success
        await eventually(lambda: _status(runner, job.job_id), lambda s: s is JobStatus.COMPLETED)
    assert ran == [("invoice", 7)]


async def test_a_capped_type_waits_at_the_server_not_in_its_timeout(env: WorkflowEnvironment, conf: Settings) -> None:
    """Cap 1, timeout 3 s, 1.2 s handlers: all complete one at a time, no attempt lost.

    No timeout is spent waiting, and an uncapped job of the same queue is not held up behind them.
    """
    running, peak = [0], [0]
    registry = JobRegistry()
    done: list[Any] = []

    @registry.handler("slow", concurrency=1, timeout=timedelta(seconds=3), retry=RetryPolicy(max_attempts=1))
    async def slow(ctx: JobContext, data: Any) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(1.2)
        running[0] -= 1

    _recording(registry, "mail", done)
    async with TemporalRunner(conf.model_copy(update={"worker_concurrency": 4}), registry, client=env.client) as runner:
        await runner.start()
        jobs = [await runner.schedule_job("slow", n, tenant_id="t1") for n in range(4)]
        started = time.monotonic()
        mail = await runner.schedule_job("mail", "m", tenant_id="t1")
        assert await runner.wait_for_result(mail.job_id, tenant_id="t1", timeout=30) == "m"
        assert time.monotonic() - started < 2.0  # not behind the capped jobs
        for job in jobs:
            await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=60)
            info = await runner.get_job_status(job.job_id, tenant_id="t1")
            assert (info.status, info.attempts) == (JobStatus.COMPLETED, 1)
    assert peak[0] == 1


async def test_a_retry_waits_while_its_queue_is_paused_on_temporal(env: WorkflowEnvironment, conf: Settings) -> None:
    """Paused during attempt 1, which fails: attempt 2 waits (the job is queued again) until the resume."""
    attempts: list[int] = []
    gate = asyncio.Event()
    registry = JobRegistry()

    @registry.handler("flaky", retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=100)))
    async def flaky(ctx: JobContext, data: Any) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await gate.wait()
            raise ConnectionError("first attempt fails")
        return ctx.attempt

    async with TemporalRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        job = await runner.schedule_job("flaky", None, tenant_id="t1")
        await eventually(lambda: asyncio.sleep(0, result=len(attempts)), lambda n: n == 1)
        await runner.pause_queue("default")
        gate.set()
        await eventually(lambda: _status(runner, job.job_id), lambda s: s is JobStatus.QUEUED)
        await asyncio.sleep(1.0)
        assert attempts == [1]
        await runner.resume_queue("default")
        assert await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=60) == 2
        assert (await runner.get_job_status(job.job_id, tenant_id="t1")).attempts == 2
    assert attempts == [1, 2]  # the attempt number carries over the hand-back


async def test_a_retry_that_meets_only_old_workers_is_handed_back_visibly(
    dev_env: WorkflowEnvironment, conf: Settings
) -> None:
    """A retry that reaches only workers without the handler hands the job back: queued, named by health.

    Attempt 1 fails on the new release, which then stops (a rollback); the retry lands on an old
    worker. When the new release returns and the old one stops, the job runs, attempt 2 of 3.
    """
    attempts: list[int] = []
    old, new = JobRegistry(), JobRegistry()
    _recording(old, "mail", [])

    @new.handler("report", retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(seconds=3)))
    async def report(ctx: JobContext, data: Any) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("first attempt fails")
        return ctx.attempt

    env = dev_env
    async with TemporalRunner(conf, old, client=env.client) as old_release:
        async with TemporalRunner(conf, new, client=env.client) as new_release:
            await new_release.start()
            job = await new_release.schedule_job("report", None, tenant_id="t1")
            await eventually(lambda: asyncio.sleep(0, result=len(attempts)), lambda n: n == 1)
            await new_release.stop()  # within the retry's 3 s backoff
            await old_release.start()
            await eventually(lambda: _status(new_release, job.job_id), lambda s: s is JobStatus.QUEUED, within=30)
            unserved = (await old_release.is_healthy()).unserved
            assert [(u.job_name, u.engine) for u in unserved] == [("report", RunnerType.TEMPORAL)]
        async with TemporalRunner(conf, new, client=env.client) as back:
            await back.start()
            await old_release.stop()  # a waiting run stays with the worker that holds it until that one stops
            assert await back.wait_for_result(job.job_id, tenant_id="t1", timeout=60) == 2
            assert (await back.get_job_status(job.job_id, tenant_id="t1")).attempts == 2
    assert attempts == [1, 2]
