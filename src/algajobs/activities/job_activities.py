"""The three activities of ``genericJobWorkflow``, as one class holding its dependencies."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pydantic
from opentelemetry.trace import Span
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .. import validation
from ..context import JobContext
from ..enums import JobStatus, RunnerType
from ..errors import JobCancelledError, PayloadValidationError, UnknownJobError
from ..limits import Limits
from ..queues import queue_of, type_task_queue
from ..registry import JobDefinition, JobRegistry
from ..store import JobStore, StoreReporter
from ..telemetry import execute_span, record_run
from ..workflows.contracts import (
    ClaimJob,
    ClaimResult,
    ClaimVerdict,
    CreateJobDetailInput,
    ExecuteJobInput,
    FinishJob,
    ReleaseJob,
    RetrySpec,
    UpdateJobStatusInput,
    UpdateProgressSignal,
)
from ..workflows.generic_job import CANCELLED_ERROR_TYPE, NO_HANDLER_HERE, QUEUE_PAUSED
from .records import TemporalRecords

_HEARTBEAT_EVERY = 0.5  # the SDK throttles what it actually sends
# Each updateProgress signal is a history event, and a history holds at most
# 51,200: one signal a second keeps a job reporting in a tight loop far below
# that for any run shorter than ~14 hours; the row gets every report.
PROGRESS_SIGNAL_EVERY = 1.0


class TemporalReporter(StoreReporter):
    """Handler reports from inside an activity: the store's, plus progress signalled to the workflow."""

    def __init__(self, store: JobStore, tenant_id: str, job_id: UUID, attempt: int) -> None:
        super().__init__(store, tenant_id, job_id, attempt)
        info = activity.info()
        if info.workflow_id is None:
            raise RuntimeError("executeJobHandler runs only inside genericJobWorkflow")
        self._workflow = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
        self._signalled_at = float("-inf")

    async def report_progress(self, progress: int, message: str | None) -> None:
        """Persist progress; signal it to the workflow (for ``getJobState``) at most once a second."""
        await super().report_progress(progress, message)
        now = time.monotonic()
        if now - self._signalled_at >= PROGRESS_SIGNAL_EVERY:
            self._signalled_at = now
            await self._workflow.signal("updateProgress", UpdateProgressSignal(progress=progress, message=message))


class JobActivities:
    """Activities with their dependencies injected (store and registry)."""

    def __init__(
        self, store: JobStore, records: TemporalRecords, registry: JobRegistry, limits: Limits, *, task_queue_base: str
    ) -> None:
        self._store = store
        self._records = records
        self._registry = registry
        self._limits = limits
        self._task_queue_base = task_queue_base

    @activity.defn(name="executeJobHandler")
    async def execute_job_handler(self, job: ExecuteJobInput) -> Any:
        """Run the registered handler; errors become Temporal application errors."""
        attempt = job.attempt_offset + activity.info().attempt
        job_id = UUID(job.job_id)
        if attempt > 1:
            # Any worker can answer this one, with or without the handler.
            done, earlier = await self._records.handler_result(job.tenant_id, job_id)
            if done:  # an earlier attempt's handler returned; only its completion was lost
                return earlier
        try:
            definition = self._registry.get(job.job_name)
        except UnknownJobError as exc:
            # Another worker on this task queue may have it (a rolling deploy): the workflow hands the job back.
            raise ApplicationError(str(exc), attempt - 1, type=NO_HANDLER_HERE, non_retryable=True) from None
        if attempt > 1 and await self._records.set_attempts(job.tenant_id, job_id, attempt):
            # A retry waits while its queue is paused, as on PostgreSQL.
            raise ApplicationError("its queue is paused", attempt - 1, type=QUEUE_PAUSED, non_retryable=True)
        ctx = JobContext(
            job_id=job_id,
            tenant_id=job.tenant_id,
            job_name=job.job_name,
            attempt=attempt,
            user_id=job.user_id,
            reporter=TemporalReporter(self._store, job.tenant_id, job_id, attempt),
        )
        with (
            execute_span(job.job_name, job_id, job.tenant_id, attempt, RunnerType.TEMPORAL, job.trace_context) as span,
            _heartbeating(),
            self._limits.counting(definition.name, definition.queue, job.tenant_id),
        ):
            return await self._run_handler(definition, ctx, job, span)

    async def _run_handler(self, definition: JobDefinition, ctx: JobContext, job: ExecuteJobInput, span: Span) -> Any:
        started = time.perf_counter()
        handler = asyncio.ensure_future(definition.invoke(ctx, job.data))
        try:
            # A plain def runs in a thread nothing can interrupt: shielded, so a cancel only asks.
            result = await (handler if definition.is_async else asyncio.shield(handler))
        except asyncio.CancelledError:
            ctx.request_cancel("cancel requested")
            if not definition.is_async:
                # The job is not over while its thread runs: report cancelled only once it returns.
                await asyncio.wait([handler])
            raise
        except JobCancelledError as exc:
            raise ApplicationError(str(exc), type=CANCELLED_ERROR_TYPE, non_retryable=True) from None
        except pydantic.ValidationError as exc:
            raise ApplicationError(str(exc), type="PayloadValidationError", non_retryable=True) from None
        except Exception as exc:
            record_run(span, RunnerType.TEMPORAL, job.job_name, JobStatus.FAILED, started, str(exc))
            non_retryable = isinstance(exc, definition.retry.non_retryable)
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=non_retryable) from exc
        record_run(span, RunnerType.TEMPORAL, job.job_name, JobStatus.COMPLETED, started)
        if ctx.cancelled:
            raise ApplicationError(ctx.cancel_reason or "cancelled", type=CANCELLED_ERROR_TYPE, non_retryable=True)
        try:
            validation.encode_result(result)
        except PayloadValidationError as exc:
            raise ApplicationError(str(exc), type="PayloadValidationError", non_retryable=True) from None
        await self._records.record_handler_result(job.tenant_id, ctx.job_id, result)
        return result

    @activity.defn(name="updateJobStatus")
    async def update_job_status(self, update: UpdateJobStatusInput) -> ClaimResult | None:
        """Claim the job for this run (status ``processing``), or record how the run ended."""
        match update:
            case ClaimJob() as claim:
                return await self._claim(claim)
            case FinishJob() as finish:
                await self._records.finish(finish)
                return None
            case ReleaseJob() as release:
                await self._records.release(release)
                return None

    async def _claim(self, claim: ClaimJob) -> ClaimResult:
        # Only a worker that can run the job claims it: otherwise the row stays queued
        # (health names the type no worker serves) and the run waits for one that can.
        try:
            definition = self._registry.get(claim.job_name)
        except UnknownJobError:
            if claim.new_row is not None:
                # Another client's start (or a Schedule's run): its row shows the job waiting, in the
                # queue of the task queue it was started on, and lets cancel_job reach it.
                queue = queue_of(self._task_queue_base, activity.info().task_queue)
                await self._records.register_waiting_run(claim, queue)
            return ClaimResult(verdict=ClaimVerdict.UNKNOWN_JOB)
        if not (claim.want_options or claim.new_row is not None):
            # The scheduler's row has its own attempts and queue.
            result = await self._records.claim(claim, max_attempts=0, queue=definition.queue)
        else:
            given = claim.new_row.max_attempts if claim.new_row is not None else None
            max_attempts = given or definition.retry.max_attempts
            result = await self._records.claim(claim, max_attempts=max_attempts, queue=definition.queue)
        options: dict[str, Any] = {}
        if claim.want_options:
            options = {"retry": RetrySpec.of(definition.retry), "timeout_seconds": definition.timeout.total_seconds()}
        if definition.concurrency is not None:
            options["activity_task_queue"] = type_task_queue(self._task_queue_base, definition.queue, definition.name)
        return result.model_copy(update=options) if options else result

    @activity.defn(name="createJobDetail")
    async def create_job_detail(self, detail: CreateJobDetailInput) -> str:
        """Write one ``job_details`` row for the workflow."""
        detail_id = await self._store.add_detail(
            detail.tenant_id,
            UUID(detail.job_id),
            step_name=detail.step_name,
            status=detail.status,
            result=detail.result,
            metadata=detail.metadata,
            retry_count=detail.retry_count,
        )
        return str(detail_id)

    @property
    def all(self) -> list[Any]:
        """The activity callables, for ``Worker(activities=...)``."""
        return [self.execute_job_handler, self.update_job_status, self.create_job_detail]


@contextlib.contextmanager
def _heartbeating() -> Iterator[None]:
    """Heartbeat in the background: liveness for Temporal, and the path cancels arrive by."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(_HEARTBEAT_EVERY)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
