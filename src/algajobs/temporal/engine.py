"""The Temporal engine: a job is a ``genericJobWorkflow`` run, a recurring job a Temporal Schedule."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.client import ScheduleSpec as TemporalScheduleSpec
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ..activities import JobActivities
from ..activities.records import TemporalRecords
from ..db import Database, Transaction
from ..engine import Accepted, Admission, Ambiguous, Refused
from ..enums import JobStatus, RunnerType
from ..errors import AlgaJobsError, RunnerStateError, ValidationError
from ..limits import Limits
from ..models import EngineHealth, ScheduleResult
from ..queues import task_queue_for, type_task_queue
from ..registry import JobRegistry
from ..schedule_spec import ScheduleSpec, SpecKind
from ..scheduling import JobBatch, JobRequest
from ..settings import Settings
from ..store import CancelOutcome, JobStore
from ..workflows import WORKFLOW_NAME
from ..workflows.contracts import CancelJobSignal
from .connection import connect, with_converter
from .health import check_temporal
from .ids import (
    schedule_id_for,
    schedule_row_id,
    search_attributes,
    temporal_priority,
    workflow_id_for,
    workflow_input,
)
from .security import is_configuration_failure, search_attribute_advice, unregistered_search_attribute
from .worker import SupervisedWorker, TaskQueuePlan

log = logging.getLogger("algajobs.temporal")
# A lost answer, not a refusal: the request may have reached the server.
_AMBIGUOUS_CODES = frozenset({RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN})
_BATCH_CONCURRENCY = 32


class TemporalEngine:
    """Starts workflows and Schedules; the job row is written here, next to the start.

    ``client`` reuses a connection (tests pass the time-skipping
    environment's); otherwise ``TEMPORAL_ADDRESS`` is dialled by :meth:`open`,
    lazily when ``lazy`` (so a failover runner opens while the cluster is down).

    With ``TEMPORAL_SEARCH_ATTRIBUTES`` every workflow it starts (and every
    Schedule's action) carries the search attributes of ``ids.SEARCH_ATTRIBUTES``.
    A namespace that refuses them is a configuration fault: the start is
    refused as misconfigured, and health reports it until a start succeeds.
    """

    def __init__(
        self,
        db: Database,
        store: JobStore,
        settings: Settings,
        registry: JobRegistry,
        limits: Limits,
        *,
        client: Client | None = None,
        lazy: bool = False,
    ) -> None:
        self._store = store
        self._settings = settings
        self._registry = registry
        self._lazy = lazy
        # Payloads are JSON through pydantic on every path, whatever client was passed in.
        self._given = None if client is None else with_converter(client, settings)
        self._client: Client | None = self._given
        self._worker_client: Client | None = self._given
        self._start_slots = asyncio.Semaphore(settings.temporal_start_concurrency)
        # The last start Temporal refused for our setup; the frontend's health check cannot see it.
        self._fault: str | None = None
        self.records = TemporalRecords(db, row_wait=settings.temporal_row_wait.total_seconds())
        self._limits = limits
        activities = JobActivities(store, self.records, registry, limits, task_queue_base=settings.temporal_task_queue)
        self._worker = SupervisedWorker(self._eager_client, settings, activities, self._task_queues)

    @property
    def kind(self) -> RunnerType:
        """Always ``temporal``."""
        return RunnerType.TEMPORAL

    @property
    def serving(self) -> bool:
        """True while this process's worker polls the cluster."""
        return self._worker.polling

    @property
    def client(self) -> Client:
        """The Temporal client (RunnerStateError before :meth:`open`)."""
        if self._client is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._client

    async def open(self) -> None:
        """Connect unless a client was given; EngineUnavailableError if an eager connect fails."""
        if self._client is None:
            self._client = await connect(self._settings, lazy=self._lazy)

    async def close(self) -> None:
        """Stop the worker and forget a client this engine dialled."""
        await self.stop_worker()
        self._client = self._worker_client = self._given

    # -- admission -----------------------------------------------------------

    async def admit(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Write the row (status queued, owner temporal) and start the job's workflow.

        A keyed job (caller-given id or singleton key) writes first, since an
        existing row means nothing may start. A fresh id cannot collide, so
        its insert runs while the workflow starts (measured: schedule_job p50
        1.3x bare temporalio instead of 1.6x); the workflow's claim waits for
        the row, and an insert that fails raises here, so the caller knows and
        the run, finding no row, never runs the job.
        """
        if request.keyed:
            written = await self.write_row(request)
            if not written.created:
                return Accepted(written)
            failure = await self.start_workflow(request, within)
        else:
            insert = asyncio.ensure_future(self.write_row(request))
            try:
                failure = await self.start_workflow(request, within)
            except BaseException:
                insert.cancel()
                raise
            written = await insert
        return Accepted(written) if failure is None else failure

    async def enqueue(self, request: JobRequest, tx: Transaction) -> ScheduleResult:
        """Write an outbox row (``pending``) in the caller's transaction; the relay starts it after commit."""
        return await self._store.insert_job(
            request,
            status=JobStatus.PENDING,
            runner_type=RunnerType.TEMPORAL,
            external_id=workflow_id_for(request.job_id),
            tx=tx,
        )

    async def adopt(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Start the workflow of a committed outbox row; a start an earlier relay made counts."""
        failure = await self.start_workflow(request, within)
        if failure is not None:
            return failure
        await self._store.mark_started(request.tenant_id, request.job_id)
        result = ScheduleResult(
            job_id=request.job_id, external_id=workflow_id_for(request.job_id), runner_type=self.kind
        )
        return Accepted(result)

    async def admit_many(self, batch: JobBatch) -> list[Admission]:
        """Admit each job (a workflow per job), a bounded number at a time."""
        gate = asyncio.Semaphore(_BATCH_CONCURRENCY)

        async def one(request: JobRequest) -> Admission:
            async with gate:
                return await self.admit(request)

        return list(await asyncio.gather(*(one(r) for r in batch.requests)))

    async def write_row(self, request: JobRequest) -> ScheduleResult:
        """Write the job row as queued on Temporal (an existing id or singleton key wins)."""
        # Queued from the start: the claim records the run id, so scheduling
        # costs one database round trip besides the Temporal call.
        return await self._store.insert_job(
            request,
            status=JobStatus.QUEUED,
            runner_type=RunnerType.TEMPORAL,
            external_id=workflow_id_for(request.job_id),
        )

    async def start_workflow(self, request: JobRequest, within: float | None = None) -> Refused | Ambiguous | None:
        """Start the job's workflow within ``within`` s; None when started (now or by an earlier try).

        At most ``JOB_TEMPORAL_START_CONCURRENCY`` starts are in flight: a burst
        waits for a slot here, and a call that gets none in time is refused as
        ``busy`` (nothing was sent), which the breaker does not count as an outage.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(within):
                await self._start_slots.acquire()
        except TimeoutError:
            limit = self._settings.temporal_start_concurrency
            return Refused(f"Temporal start held back: {limit} starts in flight for {within:g}s", busy=True)
        try:
            remaining = None if within is None else max(within - (loop.time() - started), 0.001)
            return await self._start_once(request, remaining)
        finally:
            self._start_slots.release()

    async def _start_once(self, request: JobRequest, within: float | None) -> Refused | Ambiguous | None:
        try:
            # In this task, not a wait_for task: the start is sent before a row insert running
            # beside it (see admit) takes the loop for its own Python work.
            async with asyncio.timeout(within):
                await self.client.start_workflow(
                    WORKFLOW_NAME,  # by name: the run takes raw input, validated inside (see generic_job)
                    workflow_input(request),
                    id=workflow_id_for(request.job_id),
                    task_queue=self._task_queue(request),
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    priority=temporal_priority(request.priority, request.tenant_id),
                    search_attributes=self._search_attributes(request, request.job_id),
                    rpc_timeout=None if within is None else timedelta(seconds=within),
                )
        except WorkflowAlreadyStartedError:
            return None  # an earlier, ambiguous attempt did start it
        except TimeoutError:
            return Ambiguous("Temporal start failed: no answer" + ("" if within is None else f" within {within:g}s"))
        except (RPCError, RuntimeError) as exc:  # RuntimeError: the lazy client could not connect
            failure = f"Temporal start failed: {type(exc).__name__}: {exc}"
            if is_configuration_failure(exc):
                return Refused(self._misconfigured(exc, failure), misconfigured=True)
            if isinstance(exc, RPCError) and exc.status in _AMBIGUOUS_CODES:
                return Ambiguous(failure)
            return Refused(failure)
        self._fault = None
        return None

    def _search_attributes(self, request: JobRequest, job_id: UUID) -> TypedSearchAttributes | None:
        return search_attributes(request, job_id) if self._settings.temporal_search_attributes else None

    def _misconfigured(self, exc: RPCError | RuntimeError, failure: str) -> str:
        """The reason of a start refused for our setup, remembered for health."""
        attribute = unregistered_search_attribute(exc)
        if attribute is None:
            reason = f"{failure} (check TEMPORAL_TLS_*, TEMPORAL_API_KEY)"
        else:
            reason = f"{failure} ({search_attribute_advice(attribute, self._settings.temporal_namespace)})"
        self._fault = reason
        return reason

    async def register_recurring(
        self, request: JobRequest, spec: ScheduleSpec, *, within: float | None = None, tx: Transaction | None = None
    ) -> Admission:
        """Create or update the Temporal Schedule, then its 'active' row (id derived from the schedule id).

        A Temporal Schedule cannot join a database transaction: ``tx`` is refused (ValidationError).
        """
        if tx is not None:
            raise ValidationError("a Temporal Schedule cannot join your transaction; register it after commit")
        schedule_id = schedule_id_for(request.tenant_id, request.name, request.singleton_key)
        row_id = schedule_row_id(schedule_id)
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                WORKFLOW_NAME,
                workflow_input(request, schedule_id=str(row_id)),
                id=f"alga-scheduled-{row_id}",
                task_queue=self._task_queue(request),
                priority=temporal_priority(request.priority, request.tenant_id),
                typed_search_attributes=self._search_attributes(request, row_id) or TypedSearchAttributes.empty,
            ),
            spec=_temporal_spec(spec),
        )
        try:
            await asyncio.wait_for(self._create_or_update(schedule_id, schedule), within)
        except TimeoutError:
            return Ambiguous(f"Temporal did not answer for schedule {schedule_id} within {within:g}s")
        except (RPCError, RuntimeError) as exc:
            failure = f"Temporal did not accept schedule {schedule_id}: {exc}"
            if is_configuration_failure(exc):
                return Refused(self._misconfigured(exc, failure), misconfigured=True)
            return Refused(failure)
        self._fault = None
        try:
            created = await self._write_schedule_row(request, spec, schedule_id, row_id)
        except AlgaJobsError:
            # Never leave an untracked Schedule: without its active row it must not exist either.
            await self._delete_schedule(schedule_id, within)
            raise
        return Accepted(
            ScheduleResult(job_id=row_id, external_id=schedule_id, runner_type=RunnerType.TEMPORAL, created=created)
        )

    async def _write_schedule_row(
        self, request: JobRequest, spec: ScheduleSpec, schedule_id: str, row_id: UUID
    ) -> bool:
        return await self.records.upsert_schedule(
            tenant_id=request.tenant_id,
            job_id=row_id,
            name=request.name,
            data=request.data,
            user_id=request.user_id,
            priority=request.priority,
            max_attempts=request.definition.retry.max_attempts,
            metadata={"schedule": spec.text, "schedule_kind": spec.kind, "singleton_key": request.singleton_key},
            schedule_id=schedule_id,
            next_run_at=spec.next_after(datetime.now(UTC)),
            queue=request.definition.queue,
        )

    async def _delete_schedule(self, schedule_id: str, within: float | None) -> None:
        try:
            await asyncio.wait_for(self.client.get_schedule_handle(schedule_id).delete(), within)
        except (RPCError, RuntimeError, TimeoutError) as exc:
            # Its runs find no active row and skip; a later registration adopts it.
            log.warning("Schedule %s left on Temporal without a row: %s", schedule_id, exc or type(exc).__name__)

    async def _create_or_update(self, schedule_id: str, schedule: Schedule) -> None:
        try:
            await self.client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await self.client.get_schedule_handle(schedule_id).update(replace)

    # -- cancel, health, worker ---------------------------------------------

    async def cancel(
        self, cancelled: CancelOutcome, *, within: float | None = None, cancelled_by: str | None = None
    ) -> None:
        """Signal ``cancelJob`` to the workflow, or delete the Schedule; failures are logged."""
        external_id = cancelled.external_id
        if external_id is None:
            return
        try:
            if cancelled.previous_status is JobStatus.ACTIVE:
                await asyncio.wait_for(self.client.get_schedule_handle(external_id).delete(), within)
            else:
                signal = CancelJobSignal(reason="cancel_job called", cancelled_by=cancelled_by)
                await asyncio.wait_for(self.client.get_workflow_handle(external_id).signal("cancelJob", signal), within)
        except (RPCError, RuntimeError, TimeoutError) as exc:
            # The row already says cancelled: a run that has not claimed it never will.
            log.warning("cancel of %s not delivered to Temporal: %s", external_id, exc or type(exc).__name__)

    async def health(self, *, within: float) -> EngineHealth:
        """Ask the frontend for its health within ``within`` seconds; misconfigured while starts are refused so."""
        report = await check_temporal(self.client, wait=within)
        if report.healthy and self._fault is not None:
            # The frontend answers, but refuses our starts (search attributes): not an outage to ride out.
            error = f"configuration: {self._fault}"
            return report.model_copy(update={"healthy": False, "misconfigured": True, "error": error})
        return report

    async def start_worker(self) -> None:
        """Run a supervised worker here: it waits while the cluster is down and is rebuilt on failure."""
        self._limits.load()  # handlers registered since the runner opened count
        self._worker.start()

    async def stop_worker(self) -> None:
        """Stop the worker; running activities get the shutdown grace period."""
        await self._worker.stop()

    def _task_queues(self) -> dict[str, TaskQueuePlan]:
        """Each served queue's task queue, and each capped job type's own, with their slots.

        The cap of a type is the slot count of its task queue's worker, so
        Temporal holds the other jobs back (queued at the server, no attempt
        or timeout spent); a queue's cap is its worker's slot count.
        """
        self._limits.load()
        most, base = self._settings.worker_concurrency, self._settings.temporal_task_queue
        plans = {
            task_queue_for(base, queue): TaskQueuePlan(min(most, self._registry.queue_limit(queue) or most))
            for queue in self._limits.queues
        }
        for name, (queue, cap) in self._limits.capped_types.items():
            plans[type_task_queue(base, queue, name)] = TaskQueuePlan(min(most, cap), workflows=False)
        return plans

    def _task_queue(self, request: JobRequest) -> str:
        return task_queue_for(self._settings.temporal_task_queue, request.definition.queue)

    async def _eager_client(self) -> Client:
        # Workers need an eagerly connected client; a lazy one is re-dialled once the cluster answers.
        if self._worker_client is None:
            self._worker_client = self.client if not self._lazy else await connect(self._settings)
        return self._worker_client


def _temporal_spec(spec: ScheduleSpec) -> TemporalScheduleSpec:
    if spec.kind is SpecKind.CRON:
        return TemporalScheduleSpec(cron_expressions=[spec.text])
    assert spec.interval is not None
    return TemporalScheduleSpec(intervals=[ScheduleIntervalSpec(every=spec.interval)])
