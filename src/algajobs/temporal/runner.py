"""The Temporal runner: the runner interface on Temporal, bookkeeping in the shared tables."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.client import (
    ScheduleSpec as TemporalScheduleSpec,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from .. import scheduling, validation
from ..activities import JobActivities
from ..db import Pool, accepting, check_postgres, open_pool, with_retry
from ..enums import JobStatus, RunnerType
from ..errors import EngineUnavailableError, JobStateError, RunnerStateError
from ..migrations import migrate
from ..models import EngineHealth, HealthReport, ScheduleResult
from ..registry import JobRegistry
from ..runner import RunnerBase, RunnerState
from ..schedule_spec import ScheduleSpec, SpecKind
from ..scheduling import JobRequest
from ..settings import Settings
from ..store import JobStore
from ..telemetry import carrier, schedule_span
from ..workflows import GenericJobWorkflow
from ..workflows.contracts import CancelJobSignal, GenericJobInput, RetrySpec
from .connection import build_worker, connect, with_converter
from .records import TemporalRecords

log = logging.getLogger("algajobs.temporal")
F = TypeVar("F")
_SCHEDULE_NAMESPACE = uuid.UUID("0e7d0b8c-4c57-4d8e-8d1e-2f9a3f1c6b55")


def workflow_id_for(job_id: uuid.UUID) -> str:
    """The workflow id of a job: derived from its id, so a job can never start twice."""
    return f"alga-job-{job_id}"


def schedule_id_for(tenant_id: str, name: str, singleton_key: str | None) -> str:
    """The Temporal Schedule id of a recurring job (one per tenant, name and key)."""
    return f"alga-schedule-{tenant_id}-{name}-{singleton_key or 'default'}"


def workflow_input(
    request: JobRequest, *, run_at: datetime | None = None, schedule_id: str | None = None
) -> GenericJobInput:
    """The ``genericJobWorkflow`` input for a validated request."""
    retry = request.definition.retry
    return GenericJobInput(
        job_id=None if schedule_id else str(request.job_id),
        job_name=request.name,
        tenant_id=request.tenant_id,
        data=request.data,
        user_id=request.user_id,
        run_at=run_at,
        retry=RetrySpec(
            max_attempts=retry.max_attempts,
            initial_interval_seconds=retry.initial_interval.total_seconds(),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval_seconds=retry.maximum_interval.total_seconds(),
            non_retryable=list(retry.non_retryable_names),
        ),
        timeout_seconds=request.definition.timeout.total_seconds(),
        schedule_id=schedule_id,
        trace_context=carrier(),
    )


class TemporalRunner(RunnerBase):
    """Schedules jobs as ``genericJobWorkflow`` runs; ``start()`` runs a Temporal worker here.

    Pass ``client`` to reuse a connection (tests pass the time-skipping
    environment's client); otherwise ``TEMPORAL_ADDRESS`` is dialled on enter.
    """

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        *,
        client: Client | None = None,
        pool: Pool | None = None,
        lazy: bool = False,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.state = RunnerState.CLOSED
        # Payloads are JSON through pydantic on every path, whatever client was passed in.
        self._client = None if client is None else with_converter(client)
        self._own_client = client is None
        self._lazy = lazy
        self._own_pool = pool is None
        self._pool: Pool | None = pool
        self._store: JobStore | None = None
        self._records: TemporalRecords | None = None
        self._worker: Worker | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._worker_running = False

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.state is not RunnerState.CLOSED:
            raise RunnerStateError("runner is already open")
        if self._pool is None:
            await with_retry(lambda: migrate(self.settings), deadline=5.0, what="migrate")
            self._pool = await open_pool(self.settings)
        self._store = JobStore(self._pool)
        self._records = TemporalRecords(self._pool)
        if self._client is None:
            try:
                self._client = await connect(self.settings, lazy=self._lazy)
            except EngineUnavailableError:
                if self._own_pool:
                    await self._pool.close()
                raise
        self.state = RunnerState.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._pool is not None and self._own_pool:
            await self._pool.close()
            self._pool = None
        self._store = self._records = None
        if self._own_client:
            self._client = None
        self.state = RunnerState.CLOSED

    async def start(self) -> None:
        """Run a Temporal worker for ``genericJobWorkflow`` in this process (idempotent).

        The worker is supervised: while the cluster is unreachable it waits and
        retries, and it is rebuilt if it ever stops on an error.
        """
        if self._worker_task is None:
            self._worker_task = asyncio.create_task(self._supervise(), name="algajobs-temporal-worker")
            self.state = RunnerState.PROCESSING

    async def _supervise(self) -> None:
        delay = 0.2
        activities = JobActivities(self.store, self._require_records(), self.registry)
        worker_client: Client | None = None if self._lazy and self._own_client else self.client
        while True:
            try:
                if worker_client is None:
                    # Workers need an eagerly connected client; dial one once the cluster answers.
                    worker_client = await connect(self.settings)
                await worker_client.service_client.check_health(timeout=timedelta(seconds=2))
                self._worker = build_worker(worker_client, self.settings, activities)
                self._worker_running = True
                await self._worker.run()
                return  # shutdown() was called
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: wait, then rebuild the worker
                log.warning("Temporal worker unavailable (%s); retrying in %.1fs", exc, delay)
            finally:
                self._worker_running = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        """Stop the worker; running activities get the shutdown grace period to finish."""
        if self._worker_task is None:
            return
        if self._worker is not None and self._worker_running:
            await self._worker.shutdown()
        self._worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._worker_task
        self._worker = self._worker_task = None
        self.state = RunnerState.OPEN

    @property
    def store(self) -> JobStore:
        """The monitoring store (raises RunnerStateError when closed)."""
        if self._store is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._store

    @property
    def client(self) -> Client:
        """The Temporal client."""
        if self._client is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._client

    def _require_records(self) -> TemporalRecords:
        if self._records is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._records

    # -- scheduling ----------------------------------------------------------

    async def submit(self, request: JobRequest, *, rpc_timeout: timedelta | None = None) -> ScheduleResult:
        """Write the row and start the workflow (see ``write_and_start``); a repeated job id starts nothing."""
        with schedule_span(request.name, request.tenant_id, RunnerType.TEMPORAL):
            written, refused = await write_and_start(
                request,
                lambda: self.write_row(request),
                lambda: _failure_of(self.start_workflow_for(request, rpc_timeout=rpc_timeout)),
            )
            if refused is None:
                return written
            if await self._require_records().delete_unstarted(request.tenant_id, request.job_id):
                raise refused
            return written  # the start was only ambiguous: its workflow already claimed the row

    async def write_row(self, request: JobRequest) -> ScheduleResult:
        """Write the job's row as queued on Temporal (an existing id or singleton key wins)."""
        # Queued from the start: the workflow's claim records its run id, so
        # scheduling costs one database round trip besides the Temporal call.
        return await accepting(
            self.store.insert_job(
                request,
                status=JobStatus.QUEUED,
                runner_type=RunnerType.TEMPORAL,
                external_id=workflow_id_for(request.job_id),
            )
        )

    async def start_workflow_for(self, request: JobRequest, *, rpc_timeout: timedelta | None = None) -> None:
        """Start the job's workflow; raise EngineUnavailableError if Temporal refuses or fails."""
        try:
            await self.client.start_workflow(
                GenericJobWorkflow.run,
                workflow_input(request, run_at=request.run_at),
                id=workflow_id_for(request.job_id),
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            pass  # an earlier, ambiguous attempt did start it
        except (RPCError, RuntimeError) as exc:
            raise EngineUnavailableError(f"Temporal did not accept job {request.job_id}: {exc}") from exc

    async def schedule_recurring_job(
        self,
        name: str,
        data: Any,
        interval: str | timedelta,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
    ) -> ScheduleResult:
        """Create or update a Temporal Schedule; the same (tenant, name, key) is updated in place."""
        spec = ScheduleSpec.parse(interval)
        schedule_id = schedule_id_for(validation.tenant_id(tenant_id), name, singleton_key)
        row_id = uuid.uuid5(_SCHEDULE_NAMESPACE, schedule_id)
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority, job_id=row_id,
        )  # fmt: skip
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                GenericJobWorkflow.run,
                workflow_input(request, schedule_id=str(row_id)),
                id=f"alga-scheduled-{row_id}",
                task_queue=self.settings.temporal_task_queue,
            ),
            spec=_temporal_spec(spec),
        )
        try:
            await self.client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            handle = self.client.get_schedule_handle(schedule_id)

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await handle.update(replace)
        except (RPCError, RuntimeError) as exc:
            raise EngineUnavailableError(f"Temporal did not accept schedule {schedule_id}: {exc}") from exc
        created = await self._require_records().upsert_schedule(
            tenant_id=request.tenant_id,
            job_id=row_id,
            name=name,
            data=request.data,
            user_id=request.user_id,
            priority=priority,
            max_attempts=request.definition.retry.max_attempts,
            metadata={"schedule": spec.text, "schedule_kind": spec.kind, "singleton_key": singleton_key},
            schedule_id=schedule_id,
            next_run_at=spec.next_after(datetime.now(UTC)),
        )
        return ScheduleResult(job_id=row_id, external_id=schedule_id, runner_type=RunnerType.TEMPORAL, created=created)

    async def cancel_job(self, job_id: Any, *, tenant_id: str, cancelled_by: str | None = None) -> bool:
        """Cancel: a waiting or running workflow is signalled; a schedule is deleted."""
        outcome = await self.store.cancel(job_id, tenant_id=tenant_id)
        if outcome is None:
            return False
        if outcome.runner_type is RunnerType.TEMPORAL and outcome.external_id:
            await self._cancel_in_temporal(outcome.previous_status, outcome.external_id, cancelled_by)
        return True

    async def _cancel_in_temporal(self, previous: JobStatus, external_id: str, cancelled_by: str | None) -> None:
        try:
            if previous is JobStatus.ACTIVE:
                await self.client.get_schedule_handle(external_id).delete()
            else:
                handle = self.client.get_workflow_handle(external_id)
                await handle.signal("cancelJob", CancelJobSignal(reason="cancel_job called", cancelled_by=cancelled_by))
        except RPCError as exc:
            # The row already says cancelled; a finished workflow cannot take a signal.
            log.info("cancel of %s not delivered to Temporal: %s", external_id, exc)

    async def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Manual retry of a failed or cancelled Temporal job is not supported yet."""
        info = await self.store.get_job(job_id, tenant_id=tenant_id)
        raise JobStateError(f"job {info.job_id} ran on Temporal; schedule it again instead of retrying")

    # -- monitoring ----------------------------------------------------------

    async def is_healthy(self) -> HealthReport:
        """Ping Temporal and PostgreSQL."""
        postgres = await check_postgres(self.settings, self._pool)
        temporal = await check_temporal(self.client)
        return HealthReport(healthy=postgres.healthy and temporal.healthy, engines=(temporal, postgres))


async def check_temporal(client: Client, *, wait: float = 2.0) -> EngineHealth:
    """Ask the frontend for its health, bounded by ``wait`` seconds (connecting included)."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(client.service_client.check_health(timeout=timedelta(seconds=wait)), wait)
    except TimeoutError:
        return EngineHealth(engine=RunnerType.TEMPORAL, healthy=False, error=f"no answer within {wait:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; it is reported
        return EngineHealth(
            engine=RunnerType.TEMPORAL,
            healthy=False,
            error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )
    return EngineHealth(engine=RunnerType.TEMPORAL, healthy=True, latency_ms=(time.perf_counter() - started) * 1000)


async def probe_temporal(settings: Settings) -> EngineHealth:
    """Connect to TEMPORAL_ADDRESS and report its health (for the CLI)."""
    try:
        client = await asyncio.wait_for(connect(settings), 3.0)
    except (EngineUnavailableError, TimeoutError) as exc:
        return EngineHealth(engine=RunnerType.TEMPORAL, healthy=False, error=str(exc) or "connect timed out")
    return await check_temporal(client)


async def write_and_start(
    request: JobRequest,
    write: Callable[[], Awaitable[ScheduleResult]],
    start: Callable[[], Awaitable[F | None]],
) -> tuple[ScheduleResult, F | None]:
    """Write the job's row and start its workflow; ``start`` returns its failure instead of raising.

    A keyed job (caller-given id or singleton key) writes first, since an
    existing row means nothing may start. A fresh id cannot collide, so its
    insert runs while the workflow starts; the insert's error is raised once
    the start has ended: with no row the workflow never runs the job.
    """
    if request.keyed:
        written = await write()
        return written, (await start() if written.created else None)
    insert = asyncio.ensure_future(write())
    try:
        failure = await start()
    except BaseException:
        insert.cancel()
        raise
    return await insert, failure


async def _failure_of(start: Awaitable[None]) -> EngineUnavailableError | None:
    """Await a workflow start; return its refusal instead of raising it."""
    try:
        await start
    except EngineUnavailableError as exc:
        return exc
    return None


def _temporal_spec(spec: ScheduleSpec) -> TemporalScheduleSpec:
    if spec.kind is SpecKind.CRON:
        return TemporalScheduleSpec(cron_expressions=[spec.text])
    assert spec.interval is not None
    return TemporalScheduleSpec(intervals=[ScheduleIntervalSpec(every=spec.interval)])
