"""Search attributes on job workflows, on real dev servers with and without the attributes registered."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.common import TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from algajobs import (
    ConfigurationError,
    FailoverRunner,
    JobContext,
    JobNotFoundError,
    JobRegistry,
    RunnerType,
    Settings,
    TemporalRunner,
)
from algajobs.temporal.ids import (
    JOB_ID_ATTRIBUTE,
    JOB_NAME_ATTRIBUTE,
    QUEUE_ATTRIBUTE,
    SEARCH_ATTRIBUTES,
    TENANT_ATTRIBUTE,
    search_attribute_flags,
    workflow_id_for,
)
from algajobs.testing import temporal_cli_path
from tests.helpers import eventually, temporal_engine

_VISIBILITY_WAIT = 20  # visibility is eventually consistent; the dev server usually lists within a second


@pytest.fixture
async def registered_env() -> AsyncIterator[WorkflowEnvironment]:
    """A throwaway dev server whose default namespace has algajobs' search attributes."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(),
        ui=False,
        ip="127.0.0.1",
        dev_server_extra_args=search_attribute_flags(),
    )
    async with environment:
        yield environment


@pytest.fixture
async def bare_env() -> AsyncIterator[WorkflowEnvironment]:
    """A throwaway dev server without the search attributes, as an existing cluster may be."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment


@pytest.fixture
def conf(settings: Settings) -> Settings:
    """Temporal settings with search attributes on, on a task queue of this test's own."""
    return settings.model_copy(
        update={
            "runner_type": RunnerType.TEMPORAL,
            "temporal_task_queue": f"q-{uuid.uuid4()}",
            "temporal_search_attributes": True,
        }
    )


@pytest.fixture
def jobs() -> JobRegistry:
    """A 'mail' job on the default queue and an 'invoice' job on the 'billing' queue."""
    registry = JobRegistry()

    @registry.handler("mail")
    async def mail(ctx: JobContext, data: Any) -> Any:
        return data

    @registry.handler("invoice", queue="billing")
    async def invoice(ctx: JobContext, data: Any) -> Any:
        return data

    return registry


async def _listed(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


def _values(attributes: TypedSearchAttributes) -> dict[str, Any]:
    return {key.name: attributes.get(key) for key in SEARCH_ATTRIBUTES}


async def test_job_workflows_are_listed_by_tenant(
    registered_env: WorkflowEnvironment, conf: Settings, jobs: JobRegistry
) -> None:
    """Jobs of two tenants: the visibility API lists each tenant's workflows by AlgaTenant, with name, id, queue."""
    client = registered_env.client
    async with TemporalRunner(conf, jobs, client=client) as runner:
        acme = [
            await runner.schedule_job("mail", 1, tenant_id="acme"),
            await runner.schedule_job("invoice", 2, tenant_id="acme"),
        ]
        globex = [await runner.schedule_job("mail", 3, tenant_id="globex")]
        acme_ids = {workflow_id_for(job.job_id) for job in acme}

        assert await eventually(
            lambda: _listed(client, 'AlgaTenant="acme"'), lambda ids: ids == acme_ids, within=_VISIBILITY_WAIT
        )
        assert await eventually(
            lambda: _listed(client, 'AlgaTenant="globex"'),
            lambda ids: ids == {workflow_id_for(globex[0].job_id)},
            within=_VISIBILITY_WAIT,
        )
        billing = await eventually(
            lambda: _listed(client, 'AlgaTenant="acme" AND AlgaQueue="billing"'),
            lambda ids: len(ids) == 1,
            within=_VISIBILITY_WAIT,
        )
        assert billing == {workflow_id_for(acme[1].job_id)}

        described = await client.get_workflow_handle(workflow_id_for(acme[1].job_id)).describe()
        assert _values(described.typed_search_attributes) == {
            TENANT_ATTRIBUTE.name: "acme",
            JOB_NAME_ATTRIBUTE.name: "invoice",
            JOB_ID_ATTRIBUTE.name: str(acme[1].job_id),
            QUEUE_ATTRIBUTE.name: "billing",
        }


async def test_a_recurring_jobs_runs_carry_the_attributes(
    registered_env: WorkflowEnvironment, conf: Settings, jobs: JobRegistry
) -> None:
    """A Schedule's action carries the attributes (job id: the schedule's row id), and so does a run it fires."""
    client = registered_env.client
    async with TemporalRunner(conf, jobs, client=client) as runner:
        scheduled = await runner.schedule_recurring_job("invoice", {"n": 1}, "1 hour", tenant_id="acme")
        assert scheduled.external_id is not None
        handle = client.get_schedule_handle(scheduled.external_id)
        action = (await handle.describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert _values(action.typed_search_attributes) == {
            TENANT_ATTRIBUTE.name: "acme",
            JOB_NAME_ATTRIBUTE.name: "invoice",
            JOB_ID_ATTRIBUTE.name: str(scheduled.job_id),
            QUEUE_ATTRIBUTE.name: "billing",
        }

        await handle.trigger()
        fired = await eventually(
            lambda: _listed(client, f'AlgaJobId="{scheduled.job_id}"'), lambda ids: len(ids) == 1, within=20
        )
        assert all(w.startswith(f"alga-scheduled-{scheduled.job_id}") for w in fired)
        await handle.delete()


async def test_attributes_are_off_by_default_so_a_bare_namespace_keeps_working(
    bare_env: WorkflowEnvironment, settings: Settings, jobs: JobRegistry
) -> None:
    """Without TEMPORAL_SEARCH_ATTRIBUTES a namespace lacking the attributes starts jobs, which carry none."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    assert not conf.temporal_search_attributes
    async with TemporalRunner(conf, jobs, client=bare_env.client) as runner:
        started = await runner.schedule_job("mail", 1, tenant_id="acme")
        described = await bare_env.client.get_workflow_handle(workflow_id_for(started.job_id)).describe()
        assert _values(described.typed_search_attributes) == dict.fromkeys(k.name for k in SEARCH_ATTRIBUTES)


async def test_unregistered_attributes_refuse_a_temporal_only_job_loudly(
    bare_env: WorkflowEnvironment, conf: Settings, jobs: JobRegistry
) -> None:
    """Setting on, namespace without the attributes: ConfigurationError naming the attribute and the fix, no row."""
    async with TemporalRunner(conf, jobs, client=bare_env.client) as runner:
        job_id = uuid.uuid4()
        with pytest.raises(ConfigurationError) as refused:
            await runner.schedule_job("mail", 1, tenant_id="acme", job_id=job_id)
        message = str(refused.value)
        assert "AlgaTenant" in message
        assert "temporal operator search-attribute create" in message
        assert "TEMPORAL_SEARCH_ATTRIBUTES" in message
        with pytest.raises(JobNotFoundError):
            await runner.get_job_status(job_id, tenant_id="acme")

        report = await runner.is_healthy()
        temporal = report.engines[0]
        assert (report.healthy, temporal.engine, temporal.misconfigured) == (False, RunnerType.TEMPORAL, True)
        assert temporal.error is not None and "AlgaTenant" in temporal.error
        with pytest.raises(ConfigurationError, match="AlgaTenant"):
            await runner.schedule_recurring_job("mail", 1, "15 minutes", tenant_id="acme")


async def test_unregistered_attributes_under_failover_are_reported_until_registered(
    bare_env: WorkflowEnvironment, conf: Settings, jobs: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """With the fallback the job runs on PostgreSQL, logged at ERROR; health says misconfigured until fixed."""
    client = bare_env.client
    async with FailoverRunner(conf, jobs, client=client) as runner:
        with caplog.at_level(logging.ERROR, logger="algajobs.routing"):
            moved = await runner.schedule_job("mail", 1, tenant_id="acme")
        assert moved.runner_type is RunnerType.POSTGRES
        assert any("AlgaTenant" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
        report = await runner.is_healthy()
        assert not report.healthy
        assert report.engines[0].misconfigured
        assert report.engines[0].error is not None and "search-attribute create" in report.engines[0].error

        # What the documented command does: the next start goes to Temporal and health is clear again.
        keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default", search_attributes={k.name: keyword for k in SEARCH_ATTRIBUTES}
            )
        )
        started = await runner.schedule_job("mail", 2, tenant_id="acme")
        assert started.runner_type is RunnerType.TEMPORAL
        described = await temporal_engine(runner).client.get_workflow_handle(workflow_id_for(started.job_id)).describe()
        assert described.typed_search_attributes.get(TENANT_ATTRIBUTE) == "acme"
        report = await runner.is_healthy()
        assert report.healthy and not report.engines[0].misconfigured
