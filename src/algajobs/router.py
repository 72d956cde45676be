"""The default runner: Temporal first, PostgreSQL while the circuit is open.

Each ``schedule_*`` call asks the circuit breaker. Closed (or a half-open
probe): the row is written and the workflow started within
``JOB_CIRCUIT_CALL_TIMEOUT``; any failure or timeout hands the same row to
the PostgreSQL queue in the same call. Open: PostgreSQL directly, Temporal is
not touched. The job id is the idempotency key across engines and whichever
engine claims the row first runs the handler, so an ambiguous Temporal outcome
(timeout after send) never runs a job twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from temporalio.client import Client

from . import scheduling, validation
from .circuit import CircuitBreaker, CircuitConfig, CircuitState
from .db import accepting, run_query
from .enums import RunnerType
from .errors import EngineUnavailableError, RunnerStateError
from .fallback import PostgresRunner
from .models import HealthReport, ScheduleResult
from .registry import JobRegistry
from .runner import RunnerBase, RunnerState
from .schedule_spec import ScheduleSpec
from .scheduling import JobRequest
from .settings import Settings
from .store import JobStore
from .telemetry import CIRCUIT_TRANSITIONS, schedule_span
from .temporal.runner import TemporalRunner, check_temporal, write_and_start

log = logging.getLogger("algajobs.router")


class FailoverRunner(RunnerBase):
    """Temporal with a PostgreSQL fallback behind a circuit breaker; one worker serves both."""

    def __init__(self, settings: Settings, registry: JobRegistry, *, client: Client | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.postgres = PostgresRunner(settings, registry)
        self._client = client
        self._temporal: TemporalRunner | None = None
        self.breaker = CircuitBreaker(
            CircuitConfig(
                failure_threshold=settings.circuit_failure_threshold,
                cool_down=settings.circuit_cool_down.total_seconds(),
            ),
            on_change=_export_transition,
        )
        self._bound = settings.circuit_call_timeout.total_seconds()

    # -- lifecycle -----------------------------------------------------------

    @property
    def state(self) -> RunnerState:
        """The PostgreSQL side's state (it owns the pool both engines share)."""
        return self.postgres.state

    @property
    def store(self) -> JobStore:
        """The shared monitoring store."""
        return self.postgres.store

    @property
    def temporal(self) -> TemporalRunner:
        """The Temporal engine (its client dials lazily)."""
        if self._temporal is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._temporal

    async def __aenter__(self) -> Self:
        await self.postgres.__aenter__()
        # Lazy: opening must succeed while the cluster is down; the pool is shared.
        temporal = TemporalRunner(self.settings, self.registry, client=self._client, pool=self.postgres.pool, lazy=True)
        try:
            self._temporal = await temporal.__aenter__()
        except BaseException:
            await self.postgres.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._temporal is not None:
                await self._temporal.__aexit__(exc_type, exc, tb)
        finally:
            self._temporal = None
            await self.postgres.__aexit__(exc_type, exc, tb)

    async def start(self) -> None:
        """Serve both engines in this process: the PostgreSQL worker and a supervised Temporal worker."""
        await self.postgres.start()
        await self.temporal.start()

    async def stop(self) -> None:
        """Stop both workers gracefully."""
        if self._temporal is not None:
            await self._temporal.stop()
        await self.postgres.stop()

    # -- scheduling ----------------------------------------------------------

    async def submit(self, request: JobRequest) -> ScheduleResult:
        """Route one validated job; never waits on Temporal longer than the call bound.

        Row and workflow as in ``write_and_start``: an existing job (same id or
        live singleton key) is returned without asking Temporal.
        """
        if not self.breaker.allow():
            return await self._on_postgres(request)
        temporal = self.temporal
        try:
            with schedule_span(request.name, request.tenant_id, RunnerType.TEMPORAL):
                written, failure = await write_and_start(
                    request, lambda: temporal.write_row(request), lambda: self._start(request)
                )
                if failure is not None:
                    return await self._hand_over(request, f"Temporal start failed: {type(failure).__name__}: {failure}")
            return written
        finally:
            self.breaker.release()  # a half-open probe that never reached Temporal must not stay taken

    async def _start(self, request: JobRequest) -> Exception | None:
        """Start the workflow within the call bound; tell the breaker; return the failure, if any."""
        try:
            timeout = timedelta(seconds=self._bound)
            await asyncio.wait_for(self.temporal.start_workflow_for(request, rpc_timeout=timeout), self._bound)
        except (EngineUnavailableError, TimeoutError) as exc:
            self.breaker.record_failure()
            return exc
        self.breaker.record_success()
        return None

    async def _on_postgres(self, request: JobRequest) -> ScheduleResult:
        with schedule_span(request.name, request.tenant_id, RunnerType.POSTGRES):
            return await accepting(self.postgres.enqueue(request))

    async def _hand_over(self, request: JobRequest, reason: str) -> ScheduleResult:
        """Queue the already-written row on PostgreSQL, unless a workflow has claimed it."""
        params = {"tenant": request.tenant_id, "job_id": request.job_id, "reason": reason[:500]}
        moved = await accepting(run_query(self.postgres.pool, "hand_over_to_postgres", params))
        log.warning("job %s handed to PostgreSQL: %s", request.job_id, reason)
        runner_type = RunnerType.POSTGRES if moved else RunnerType.TEMPORAL
        return ScheduleResult(job_id=request.job_id, external_id=None, runner_type=runner_type)

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
        """A Temporal Schedule when the circuit allows; a PostgreSQL schedule during an outage.

        Registering on Temporal retires the PostgreSQL twin of the same
        (tenant, name, key) left from an outage, so the two never both fire.
        """
        kwargs: dict[str, Any] = {
            "tenant_id": tenant_id,
            "user_id": user_id,
            "singleton_key": singleton_key,
            "priority": priority,
        }
        # Bad input fails here, before the breaker is consulted.
        ScheduleSpec.parse(interval)
        scheduling.prepare(self.registry, self.settings, name, data, **kwargs)
        if self.breaker.allow():
            try:
                result = await asyncio.wait_for(
                    self.temporal.schedule_recurring_job(name, data, interval, **kwargs), self._bound
                )
            except (EngineUnavailableError, TimeoutError) as exc:
                self.breaker.record_failure()
                log.warning("recurring job %s registered on PostgreSQL: %s", name, exc)
            else:
                self.breaker.record_success()
                params = {"tenant": validation.tenant_id(tenant_id), "type": name, "singleton_key": singleton_key or ""}
                await run_query(self.postgres.pool, "retire_postgres_schedule", params)
                return result
            finally:
                self.breaker.release()
        return await self.postgres.schedule_recurring_job(name, data, interval, **kwargs)

    async def cancel_job(self, job_id: Any, *, tenant_id: str) -> bool:
        """Cancel on whichever engine holds the job; the Temporal part is bounded and best-effort.

        The row is cancelled first, so a workflow the signal cannot reach
        finds the job cancelled when it tries to claim it.
        """
        try:
            return await asyncio.wait_for(self.temporal.cancel_job(job_id, tenant_id=tenant_id), self._bound * 2)
        except TimeoutError:
            log.warning("cancel of %s: Temporal did not answer; the row is cancelled", job_id)
            return True

    async def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Requeue a failed or cancelled job (from either engine) on the PostgreSQL queue."""
        return await self.postgres.retry_job(job_id, tenant_id=tenant_id)

    # -- monitoring ----------------------------------------------------------

    async def is_healthy(self) -> HealthReport:
        """Both engines and the circuit state; healthy while PostgreSQL can take jobs."""
        postgres = (await self.postgres.is_healthy()).engines[0]
        temporal = await check_temporal(self.temporal.client, wait=self._bound)
        return HealthReport(healthy=postgres.healthy, engines=(temporal, postgres), circuit_state=self.breaker.state)

    @property
    def circuit_state(self) -> CircuitState:
        """The breaker's current state."""
        return self.breaker.state


def _export_transition(old: CircuitState, new: CircuitState) -> None:
    CIRCUIT_TRANSITIONS.add(1, {"from": old.value, "to": new.value})
