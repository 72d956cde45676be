"""OpenTelemetry: one trace per job from schedule through execution, on both engines."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from algajobs import JobRegistry, JobStatus, PostgresRunner, RunnerType, Settings, TemporalRunner, scheduling
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import test_server_path
from algajobs.workflows.contracts import GenericJobResult
from tests.helpers import eventually, temporal_engine
from tests.integration.jobs import register_all

# OpenTelemetry providers can be set once per process; every test shares these.
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


@pytest.fixture(autouse=True)
def clean_spans() -> None:
    """Each test sees only its own spans."""
    SPANS.clear()


def spans_named(prefix: str) -> list[ReadableSpan]:
    """Finished spans whose name starts with ``prefix``."""
    return [s for s in SPANS.get_finished_spans() if s.name.startswith(prefix)]


def metric_total(name: str, **labels: str) -> float:
    """Sum of a counter's data points whose attributes include ``labels``."""
    data = METRICS.get_metrics_data()
    total = 0.0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:  # type: ignore[union-attr]
                    if all(point.attributes.get(k) == v for k, v in labels.items()):  # type: ignore[union-attr]
                        total += point.value  # type: ignore[union-attr]
    return total


@pytest.fixture
def handlers(registry: JobRegistry) -> list[Any]:
    """Register the handler zoo."""
    seen: list[Any] = []
    register_all(registry, seen)
    return seen


async def test_postgres_job_is_one_trace(runner: PostgresRunner, handlers: list[Any]) -> None:
    """Schedule and execute spans share a trace; execute is the schedule span's child; metrics count both."""
    before = metric_total("algajobs.jobs.finished", engine="postgres", status="completed")
    await runner.start()
    job = await runner.schedule_job("record", 1, tenant_id="t1")
    await eventually(lambda: runner.get_job_status(job.job_id, tenant_id="t1"), lambda i: i.status.is_finished)
    (schedule,) = spans_named("algajobs.schedule record")
    execute = await eventually(lambda: _spans("algajobs.execute record"), lambda s: len(s) == 1)
    assert schedule.context is not None
    assert execute[0].context is not None
    assert execute[0].context.trace_id == schedule.context.trace_id
    assert execute[0].parent is not None
    assert execute[0].parent.span_id == schedule.context.span_id
    assert execute[0].attributes is not None
    assert execute[0].attributes["algajobs.job.id"] == str(job.job_id)
    assert metric_total("algajobs.jobs.scheduled", engine="postgres") >= 1
    assert metric_total("algajobs.jobs.finished", engine="postgres", status="completed") == before + 1


async def _spans(prefix: str) -> list[ReadableSpan]:
    return spans_named(prefix)


@pytest.fixture
async def temporal_runner(settings: Settings, registry: JobRegistry) -> AsyncIterator[TemporalRunner]:
    """A Temporal runner on the time-skipping server."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        conf = settings.model_copy(
            update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"}
        )
        async with TemporalRunner(conf, registry, client=environment.client) as opened:
            await opened.start()
            yield opened


async def test_temporal_job_is_one_trace(temporal_runner: TemporalRunner, handlers: list[Any]) -> None:
    """Schedule, Temporal's workflow/activity spans and the handler span all share one trace."""
    job = await temporal_runner.schedule_job("record", 1, tenant_id="t1")
    handle = temporal_engine(temporal_runner).client.get_workflow_handle(
        workflow_id_for(job.job_id), result_type=GenericJobResult
    )
    assert (await handle.result()).success
    info = await temporal_runner.get_job_status(job.job_id, tenant_id="t1")
    assert info.status is JobStatus.COMPLETED
    (schedule,) = spans_named("algajobs.schedule record")
    (execute,) = spans_named("algajobs.execute record")
    temporal_spans = [s for s in SPANS.get_finished_spans() if "genericJobWorkflow" in s.name]
    assert temporal_spans, [s.name for s in SPANS.get_finished_spans()]
    assert schedule.context is not None
    trace_ids = {s.context.trace_id for s in [execute, *temporal_spans] if s.context is not None}
    assert trace_ids == {schedule.context.trace_id}
    assert metric_total("algajobs.jobs.finished", engine="temporal", status="completed") >= 1


async def test_starts_outside_a_trace_skip_temporal_client_spans(
    temporal_runner: TemporalRunner, handlers: list[Any]
) -> None:
    """Temporal's client span and header are paid for only when there is a trace to carry."""
    untraced = scheduling.prepare(temporal_runner.registry, temporal_runner.settings, "record", 1, tenant_id="t1")
    await temporal_engine(temporal_runner).start_workflow(untraced)
    assert spans_named("StartWorkflow:") == []
    traced = scheduling.prepare(temporal_runner.registry, temporal_runner.settings, "record", 2, tenant_id="t1")
    with trace.get_tracer("tests").start_as_current_span("caller") as caller:
        await temporal_engine(temporal_runner).start_workflow(traced)
    (start,) = spans_named("StartWorkflow:genericJobWorkflow")
    assert start.context is not None
    assert start.context.trace_id == caller.get_span_context().trace_id
