"""The Temporal engine on the time-skipping test server, with the real PostgreSQL store."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from algajobs import (
    EngineUnavailableError,
    FailoverRunner,
    JobContext,
    JobInfo,
    JobNotFoundError,
    JobRegistry,
    JobStatus,
    RetryPolicy,
    RunnerType,
    Settings,
    TemporalRunner,
    scheduling,
)
from algajobs.temporal.connection import workflow_runner
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import test_server_path
from algajobs.workflows import GenericJobWorkflow
from algajobs.workflows.contracts import GenericJobResult, JobState
from tests.helpers import eventually, temporal_engine
from tests.integration.jobs import register_all

HOURS = timedelta(hours=1)


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server per test."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        yield environment


@pytest.fixture
def seen(registry: JobRegistry) -> list[Any]:
    """Handlers (shared zoo plus Temporal-specific ones) append what they observe."""
    observed: list[Any] = []
    register_all(registry, observed)
    gate = asyncio.Event()
    registry.gate = gate  # type: ignore[attr-defined]

    @registry.handler(
        "hourly-retry",
        retry=RetryPolicy(max_attempts=3, initial_interval=HOURS, maximum_interval=4 * HOURS),
    )
    async def hourly_retry(ctx: JobContext, data: Any) -> int:
        observed.append((ctx.job_id, ctx.attempt))
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt}")
        return ctx.attempt

    @registry.handler("gated")
    async def gated(ctx: JobContext, data: Any) -> str:
        await ctx.report_progress(40, "waiting at the gate")
        await gate.wait()
        return "through"

    return observed


@pytest.fixture
async def runner(
    env: WorkflowEnvironment, settings: Settings, registry: JobRegistry, seen: list[Any]
) -> AsyncIterator[TemporalRunner]:
    """A Temporal runner on a fresh task queue with its worker started."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with TemporalRunner(conf, registry, client=env.client) as opened:
        await opened.start()
        yield opened


def handle_of(runner: TemporalRunner, job_id: uuid.UUID) -> WorkflowHandle[Any, GenericJobResult]:
    """The workflow handle of a job."""
    return temporal_engine(runner).client.get_workflow_handle(workflow_id_for(job_id), result_type=GenericJobResult)


async def test_job_runs_as_workflow_and_fills_the_tables(runner: TemporalRunner, seen: list[Any]) -> None:
    """A job completes on Temporal; the row, details and ids match Temporal's view."""
    job = await runner.schedule_job("invoice", {"billing_cycle_id": "c1"}, tenant_id="t1", user_id="u1")
    assert job.runner_type is RunnerType.TEMPORAL
    result = await handle_of(runner, job.job_id).result()
    assert result.success
    assert result.job_id == str(job.job_id)
    assert result.result == {"pages": 3}
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.runner_type, info.progress, info.result) == (
        JobStatus.COMPLETED,
        RunnerType.TEMPORAL,
        100,
        {"pages": 3},
    )
    described = await handle_of(runner, job.job_id).describe()
    assert info.external_id == described.id
    assert info.external_run_id == described.run_id
    details = await runner.get_job_details(job.job_id, tenant_id="t1")
    assert [d.step_name for d in details] == ["render"]


async def test_retries_back_off_on_temporal_time(
    runner: TemporalRunner, env: WorkflowEnvironment, seen: list[Any]
) -> None:
    """Hour-long backoffs elapse in skipped time; attempts are recorded."""
    job = await runner.schedule_job("hourly-retry", None, tenant_id="t1")
    await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n == 1)
    for _ in range(2):  # each backoff wait is an hour or more of skipped time
        await env.sleep(3 * HOURS)
    result = await handle_of(runner, job.job_id).result()
    assert result.success
    assert result.result == 3
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.attempts) == (JobStatus.COMPLETED, 3)


async def test_non_retryable_error_fails_after_one_attempt(runner: TemporalRunner, seen: list[Any]) -> None:
    """An error type listed non-retryable (matched by class) is not retried."""
    job = await runner.schedule_job("fatal", None, tenant_id="t1")
    result = await handle_of(runner, job.job_id).result()
    assert not result.success
    assert result.error is not None
    assert result.error.startswith("KeyError")
    assert len(seen) == 1
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.error) == (JobStatus.FAILED, result.error)


async def test_an_error_message_postgresql_cannot_hold_is_stored_escaped(
    runner: TemporalRunner, seen: list[Any]
) -> None:
    """A NUL in the handler's error reaches the row as an escape, as on the PostgreSQL engine."""
    job = await runner.schedule_job("garbled", None, tenant_id="t1")
    result = await handle_of(runner, job.job_id).result()
    assert not result.success
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.error) == (JobStatus.FAILED, "ValueError: bad\\x00byte")


async def test_timeout_fails_the_job(runner: TemporalRunner, seen: list[Any]) -> None:
    """A handler past its timeout fails the job with the same wording as the Postgres engine."""
    job = await runner.schedule_job("slow", None, tenant_id="t1")
    result = await handle_of(runner, job.job_id).result()
    assert not result.success
    assert result.error == "HandlerTimeoutError: handler exceeded its timeout of 0.2s"


async def test_job_scheduled_hours_ahead_waits_on_a_durable_timer(
    runner: TemporalRunner, env: WorkflowEnvironment, seen: list[Any]
) -> None:
    """schedule_job_at: the workflow waits (answering queries), then runs at run_at."""
    run_at = datetime.now(UTC) + 5 * HOURS
    job = await runner.schedule_job_at("record", "later", run_at, tenant_id="t1")
    handle = handle_of(runner, job.job_id)
    state = await handle.query("getJobState", result_type=JobState)
    assert state.step == "waiting"
    assert seen == []
    await env.sleep(6 * HOURS)
    result = await handle.result()
    assert result.success
    state = await handle.query("getJobState", result_type=JobState)
    assert state.started_at is not None
    assert state.started_at >= run_at


async def test_cancel_while_waiting_never_runs(runner: TemporalRunner, seen: list[Any]) -> None:
    """Cancelling a job waiting on its timer ends it at once; the handler never runs."""
    job = await runner.schedule_job_at("record", 1, datetime.now(UTC) + HOURS, tenant_id="t1")
    assert await runner.cancel_job(job.job_id, tenant_id="t1")
    result = await handle_of(runner, job.job_id).result()
    assert not result.success
    assert seen == []
    assert (await runner.get_job_status(job.job_id, tenant_id="t1")).status is JobStatus.CANCELLED


async def test_cancel_while_running_cancels_the_handler(runner: TemporalRunner, seen: list[Any]) -> None:
    """A cancel signal reaches the running handler through heartbeats; the job ends cancelled."""
    job = await runner.schedule_job("cooperative", None, tenant_id="t1")
    await eventually(lambda: asyncio.sleep(0, result=len(seen)), lambda n: n == 1)
    assert await runner.cancel_job(job.job_id, tenant_id="t1", cancelled_by="test")
    result = await asyncio.wait_for(handle_of(runner, job.job_id).result(), 30)
    assert not result.success
    assert result.error is not None
    assert "cancelled by test" in result.error
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert info.status is JobStatus.CANCELLED


async def test_progress_reaches_query_and_row(runner: TemporalRunner, registry: JobRegistry, seen: list[Any]) -> None:
    """report_progress updates both getJobState and the jobs row."""
    job = await runner.schedule_job("gated", None, tenant_id="t1")
    handle = handle_of(runner, job.job_id)
    state = await eventually(
        lambda: handle.query("getJobState", result_type=JobState), lambda s: s.progress == 40, within=15
    )
    assert (state.step, state.message) == ("running", "waiting at the gate")
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.progress, info.progress_message) == (JobStatus.PROCESSING, 40, "waiting at the gate")
    registry.gate.set()  # type: ignore[attr-defined]
    assert (await handle.result()).result == "through"


async def test_repeated_job_id_never_starts_a_second_run(runner: TemporalRunner, seen: list[Any]) -> None:
    """Scheduling the same job id again returns the existing job and starts nothing."""
    job_id = uuid.uuid4()
    first = await runner.schedule_job("record", 1, tenant_id="t1", job_id=job_id)
    again = await runner.schedule_job("record", 1, tenant_id="t1", job_id=job_id)
    assert first.created
    assert not again.created
    await handle_of(runner, job_id).result()
    assert len(seen) == 1


async def test_claim_waits_for_a_row_written_after_the_start(runner: TemporalRunner, seen: list[Any]) -> None:
    """A fresh job's row is written while its workflow starts; a claim that outruns the insert waits."""
    request = scheduling.prepare(runner.registry, runner.settings, "record", 7, tenant_id="t1")
    assert not request.keyed
    await temporal_engine(runner).start_workflow(request)
    await asyncio.sleep(0.3)  # the worker's claim is already waiting for the row
    assert (await temporal_engine(runner).write_row(request)).created
    result = await handle_of(runner, request.job_id).result()
    assert result.success
    assert seen == [(request.job_id, 7)]
    info = await runner.get_job_status(request.job_id, tenant_id="t1")
    described = await handle_of(runner, request.job_id).describe()
    assert (info.status, info.external_run_id) == (JobStatus.COMPLETED, described.run_id)


async def test_workflow_whose_row_never_lands_ends_unrun(runner: TemporalRunner, seen: list[Any]) -> None:
    """A started workflow whose schedule call failed to write the row never runs the handler."""
    temporal_engine(runner).records.row_wait = 0.3
    request = scheduling.prepare(runner.registry, runner.settings, "record", 7, tenant_id="t1")
    await temporal_engine(runner).start_workflow(request)  # and no row: as after a failed insert
    result = await handle_of(runner, request.job_id).result()
    assert not result.success
    assert result.error is not None and "never written" in result.error
    assert seen == []
    with pytest.raises(JobNotFoundError):
        await runner.get_job_status(request.job_id, tenant_id="t1")


async def test_a_retried_insert_of_a_fresh_id_still_starts_its_workflow(runner: TemporalRunner) -> None:
    """A fresh id's row can only be this call's own (an insert retried after a lost answer)."""
    fresh = scheduling.prepare(runner.registry, runner.settings, "record", 1, tenant_id="t1")
    assert (await temporal_engine(runner).write_row(fresh)).created
    assert (await temporal_engine(runner).write_row(fresh)).created
    given = scheduling.prepare(runner.registry, runner.settings, "record", 1, tenant_id="t1", job_id=uuid.uuid4())
    assert given.keyed
    assert (await temporal_engine(runner).write_row(given)).created
    assert not (await temporal_engine(runner).write_row(given)).created


async def test_failed_temporal_job_is_retried_on_postgres(
    env: WorkflowEnvironment, settings: Settings, registry: JobRegistry, seen: list[Any]
) -> None:
    """With the failover runner, a job that failed on Temporal can be retried by hand; it runs on PostgreSQL."""
    failed_once: list[bool] = []

    @registry.handler("fails-first-time", retry=RetryPolicy(max_attempts=1))
    async def fails_first_time(ctx: JobContext, data: Any) -> str:
        if not failed_once:
            failed_once.append(True)
            raise RuntimeError("first run fails")
        return "second run works"

    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with FailoverRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        job = await runner.schedule_job("fails-first-time", None, tenant_id="t1")
        assert job.runner_type is RunnerType.TEMPORAL
        handle = temporal_engine(runner).client.get_workflow_handle(
            workflow_id_for(job.job_id), result_type=GenericJobResult
        )
        assert not (await handle.result()).success
        await runner.retry_job(job.job_id, tenant_id="t1")
        info = await eventually(
            lambda: runner.get_job_status(job.job_id, tenant_id="t1"), lambda i: i.status.is_finished
        )
        assert (info.status, info.runner_type, info.result) == (
            JobStatus.COMPLETED,
            RunnerType.POSTGRES,
            "second run works",
        )


async def test_workflow_replays_deterministically(runner: TemporalRunner, seen: list[Any]) -> None:
    """The recorded history of a run replays without nondeterminism errors."""
    job = await runner.schedule_job("flaky", {"fail_times": 1}, tenant_id="t1")
    handle = handle_of(runner, job.job_id)
    await handle.result()
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=[GenericJobWorkflow], workflow_runner=workflow_runner(), data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)


async def test_activities_carry_the_fixed_names(runner: TemporalRunner) -> None:
    """The worker registers the three fixed activity names."""
    from algajobs.activities import JobActivities
    from algajobs.limits import Limits

    activities = JobActivities(
        runner.store,
        temporal_engine(runner).records,
        runner.registry,
        Limits(runner.registry, runner.settings),
        task_queue_base=runner.settings.temporal_task_queue,
    )
    names = [fn.__temporal_activity_definition.name for fn in activities.all]  # type: ignore[attr-defined]
    assert names == ["executeJobHandler", "updateJobStatus", "createJobDetail"]


async def test_batch_schedules_one_workflow_per_job(runner: TemporalRunner, seen: list[Any]) -> None:
    """schedule_jobs on a Temporal runner starts a workflow per payload; every job completes."""
    jobs = await runner.schedule_jobs("record", [1, 2, 3], tenant_id="t1")
    assert [j.runner_type for j in jobs] == [RunnerType.TEMPORAL] * 3
    results = [await handle_of(runner, j.job_id).result() for j in jobs]
    assert all(r.success for r in results)
    assert sorted(value for _, value in seen) == [1, 2, 3]


async def test_a_refused_start_withdraws_the_row_and_raises(
    settings: Settings, registry: JobRegistry, seen: list[Any]
) -> None:
    """Temporal alone, and the cluster refuses: the call raises and leaves no row behind."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_address": "127.0.0.1:1"})
    with pytest.raises(EngineUnavailableError):
        async with TemporalRunner(conf, registry):
            pass  # an eager connection to a closed port fails on open
    lazy_env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with lazy_env:
        client = lazy_env.client
    # The environment is gone: its client now refuses every call without anything being started.
    async with TemporalRunner(conf, registry, client=client) as runner:
        with pytest.raises(EngineUnavailableError, match="not accepted"):
            await runner.schedule_job("record", 1, tenant_id="t1")
        assert await runner.list_jobs(tenant_id="t1") == []


async def test_cancel_of_a_plain_handler_waits_for_its_thread(runner: TemporalRunner, registry: JobRegistry) -> None:
    """A plain def handler can only be asked: its row stays processing until the function returns."""
    seen_while_winding_down: list[str] = []
    running = threading.Event()
    conf = runner.settings

    @registry.handler("plain-loop")
    def plain_loop(ctx: JobContext, data: Any) -> None:
        running.set()
        for _ in range(500):  # bounded: 5 s at most
            if ctx.cancelled:
                time.sleep(0.5)  # winding down takes a while: long enough for a premature 'cancelled' to land
                with psycopg.connect(conf.database_url, options=f"-c search_path={conf.schema_name}") as conn:
                    row = conn.execute("SELECT status FROM jobs WHERE job_id = %s", [ctx.job_id]).fetchone()
                seen_while_winding_down.append(str(row[0]) if row else "missing")
                return
            time.sleep(0.01)

    job = await runner.schedule_job("plain-loop", None, tenant_id="t1")
    await asyncio.to_thread(running.wait, 10)
    assert await runner.cancel_job(job.job_id, tenant_id="t1")
    await handle_of(runner, job.job_id).result()
    assert seen_while_winding_down == ["processing"]
    assert (await runner.get_job_status(job.job_id, tenant_id="t1")).status is JobStatus.CANCELLED


async def test_another_client_starting_with_the_documented_input_gets_a_row_and_a_run(
    runner: TemporalRunner, env: WorkflowEnvironment, seen: list[Any]
) -> None:
    """{jobId, jobName, tenantId, data} alone (plus unknown fields) runs the job with the registry's options."""
    job_id = uuid.uuid4()
    documented = {"jobId": str(job_id), "jobName": "record", "tenantId": "t1", "data": 5, "extra": "ignored"}
    handle = await env.client.start_workflow(
        "genericJobWorkflow", documented, id=f"external-{job_id}", task_queue=runner.settings.temporal_task_queue
    )
    result = await handle.result()
    assert result["success"] and result["jobId"] == str(job_id)
    assert seen == [(job_id, 5)]
    info = await runner.get_job_status(job_id, tenant_id="t1")
    assert (info.status, info.runner_type, info.external_id) == (JobStatus.COMPLETED, RunnerType.TEMPORAL, handle.id)
    assert info.metadata["started_by"] == "temporal client"


@pytest.mark.parametrize(
    "bad",
    [
        {"jobName": "record", "data": 1},  # no tenantId
        {"jobId": "not-a-uuid", "jobName": "record", "tenantId": "t1"},
        {"jobId": str(uuid.uuid4()), "jobName": "record", "tenantId": "bad tenant!"},
        {"jobId": str(uuid.uuid4()), "jobName": "record", "tenantId": "t1", "runAt": "2030-01-01T00:00:00"},
    ],
)
async def test_a_malformed_external_start_fails_at_once(
    runner: TemporalRunner, env: WorkflowEnvironment, bad: dict[str, Any]
) -> None:
    """A malformed input fails the workflow with a clear, non-retryable error."""
    handle = await env.client.start_workflow(
        "genericJobWorkflow", bad, id=f"bad-{uuid.uuid4()}", task_queue=runner.settings.temporal_task_queue
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), 30)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert cause.type == "MalformedJobInput"
    assert await runner.list_jobs(tenant_id="t1") == []


async def test_another_clients_job_of_an_unknown_type_waits_visibly_until_cancelled(
    runner: TemporalRunner, env: WorkflowEnvironment
) -> None:
    """A start naming a type no worker has waits (a rolling deploy may bring it): its row is queued and cancellable."""
    await runner.start()
    job_id = uuid.uuid4()
    handle = await env.client.start_workflow(
        "genericJobWorkflow",
        {"jobId": str(job_id), "jobName": "not-deployed-yet", "tenantId": "t1"},
        id=f"alga-job-{job_id}",
        task_queue=runner.settings.temporal_task_queue,
    )

    async def row() -> JobInfo | None:
        found = await runner.list_jobs(tenant_id="t1")
        return found[0] if found else None

    info = await eventually(row, lambda i: i is not None)
    assert info is not None
    assert (info.status, info.job_name, info.runner_type) == (JobStatus.QUEUED, "not-deployed-yet", RunnerType.TEMPORAL)
    await asyncio.sleep(3)  # time-skipped: several waits, and a continue-as-new, later it still waits
    assert (await runner.get_job_status(job_id, tenant_id="t1")).status is JobStatus.QUEUED
    assert await runner.cancel_job(job_id, tenant_id="t1")
    result = await asyncio.wait_for(handle.result(), 30)
    assert GenericJobResult.model_validate(result).success is False
    assert (await runner.get_job_status(job_id, tenant_id="t1")).status is JobStatus.CANCELLED


async def test_progress_signals_are_throttled_so_history_stays_small(
    runner: TemporalRunner, registry: JobRegistry
) -> None:
    """200 progress reports in a tight loop: every one reaches the row, only a few become history events."""

    @registry.handler("chatty")
    async def chatty(ctx: JobContext, data: Any) -> None:
        for step in range(200):
            await ctx.report_progress(step // 2, f"step {step}")

    job = await runner.schedule_job("chatty", None, tenant_id="t1")
    handle = handle_of(runner, job.job_id)
    await handle.result()
    history = await handle.fetch_history()
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert 1 <= len(signals) <= 10
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    assert (info.status, info.progress) == (JobStatus.COMPLETED, 100)


async def test_a_retried_attempt_returns_the_recorded_result_instead_of_running_again(
    runner: TemporalRunner, seen: list[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """An attempt whose handler returned but whose completion was lost is retried without running the handler."""
    from algajobs.activities import JobActivities
    from algajobs.limits import Limits
    from algajobs.workflows.contracts import ExecuteJobInput

    job = await runner.schedule_job("record", 5, tenant_id="t1")
    await handle_of(runner, job.job_id).result()
    assert len(seen) == 1
    # As after attempt 1's handler returned and the cluster died before its completion was recorded:
    await conn.execute(
        "UPDATE jobs SET status = 'processing', result = '\"first run\"',"
        " metadata = metadata || '{\"handler_done\": true}' WHERE job_id = %s",
        [job.job_id],
    )
    activities = JobActivities(
        runner.store,
        temporal_engine(runner).records,
        runner.registry,
        Limits(runner.registry, runner.settings),
        task_queue_base=runner.settings.temporal_task_queue,
    )
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=2, workflow_id=f"alga-job-{job.job_id}")
    retried = await environment.run(
        activities.execute_job_handler,
        ExecuteJobInput(job_id=str(job.job_id), job_name="record", tenant_id="t1", data=5),
    )
    assert retried == "first run"
    assert len(seen) == 1  # the handler did not run again


async def test_failover_batch_starts_its_workflows_concurrently(
    env: WorkflowEnvironment, settings: Settings, registry: JobRegistry, seen: list[Any]
) -> None:
    """schedule_jobs on a failover runner with a healthy cluster starts every job on Temporal; all complete."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with FailoverRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        jobs = await runner.schedule_jobs("record", list(range(20)), tenant_id="t1")
        assert [j.runner_type for j in jobs] == [RunnerType.TEMPORAL] * 20
        assert len({j.job_id for j in jobs}) == 20
        for job in jobs:
            assert await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=30) is None
    assert sorted(value for _, value in seen) == list(range(20))
