"""Routing policies: which engine gets a job, and what a refusal means.

``Direct`` sends everything to one engine: a refusal withdraws the row and
raises ``EngineUnavailableError``. ``Failover`` asks the circuit breaker:
closed (or a half-open probe) tries Temporal within ``JOB_CIRCUIT_CALL_TIMEOUT``
and hands the same row to PostgreSQL when Temporal refuses or does not
answer; open goes to PostgreSQL without touching Temporal. The job id is the
idempotency key across engines and the row is claimed atomically, so an
ambiguous start never runs a job twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from .circuit import CircuitBreaker, CircuitState
from .engine import Accepted, Admission, Ambiguous, Engine, Refused
from .errors import ConfigurationError, EngineUnavailableError
from .models import ScheduleResult
from .schedule_spec import ScheduleSpec
from .scheduling import JobBatch, JobRequest
from .store import JobStore
from .telemetry import schedule_span

log = logging.getLogger("algajobs.routing")


class Routing(Protocol):
    """Decides, call by call, which engine takes a job."""

    @property
    def bound(self) -> float | None:
        """How long one call may wait on an engine (None: as long as it takes)."""

    @property
    def circuit_state(self) -> CircuitState | None:
        """The breaker's state, when there is a breaker."""

    async def schedule(self, request: JobRequest) -> ScheduleResult:
        """Admit one validated job; EngineUnavailableError when no engine takes it."""

    async def schedule_many(self, batch: JobBatch) -> list[ScheduleResult]:
        """Admit a batch of fresh jobs of one tenant and name."""

    async def register_recurring(self, request: JobRequest, spec: ScheduleSpec) -> ScheduleResult:
        """Register a recurring job on the engine the policy picks."""

    @property
    def first_choice(self) -> Engine:
        """The engine a job enqueued in the caller's transaction is written for."""

    async def relay(self, request: JobRequest) -> bool:
        """Hand a committed outbox row to an engine; False leaves it for a later round."""


class Direct:
    """Every job on one engine."""

    circuit_state = None

    def __init__(self, engine: Engine, store: JobStore) -> None:
        self.engine = engine
        self._store = store
        self.bound: float | None = None

    @property
    def first_choice(self) -> Engine:
        """The one engine."""
        return self.engine

    async def relay(self, request: JobRequest) -> bool:
        """Start the outbox row's job on the engine; a refusal leaves it pending for the next round."""
        match await self.engine.adopt(request):
            case Accepted():
                return True
            case Refused(reason) | Ambiguous(reason):
                log.warning("outbox job %s not started yet: %s", request.job_id, reason)
                return False

    async def schedule(self, request: JobRequest) -> ScheduleResult:
        """Admit on the engine; a refused or unanswered start withdraws the row and raises."""
        with schedule_span(request.name, request.tenant_id, self.engine.kind):
            return await self._settle(request, await self.engine.admit(request))

    async def schedule_many(self, batch: JobBatch) -> list[ScheduleResult]:
        """Admit the batch on the engine; each refusal is settled like a single call's."""
        admissions = await self.engine.admit_many(batch)
        return [
            admission.result if isinstance(admission, Accepted) else await self._settle(batch.requests[at], admission)
            for at, admission in enumerate(admissions)
        ]

    async def register_recurring(self, request: JobRequest, spec: ScheduleSpec) -> ScheduleResult:
        """Register on the engine; EngineUnavailableError if it does not take it."""
        match await self.engine.register_recurring(request, spec):
            case Accepted(result):
                return result
            case Refused(reason, misconfigured=True):
                raise ConfigurationError(reason)
            case Refused(reason) | Ambiguous(reason):
                raise EngineUnavailableError(reason)

    async def _settle(self, request: JobRequest, admission: Admission) -> ScheduleResult:
        match admission:
            case Accepted(result):
                return result
            case Refused(reason) | Ambiguous(reason):
                if await self._store.withdraw_unstarted(request):
                    if isinstance(admission, Refused) and admission.misconfigured:
                        raise ConfigurationError(f"job {request.job_id} was not accepted: {reason}")
                    raise EngineUnavailableError(f"job {request.job_id} was not accepted: {reason}")
                # Only ambiguous after all: its run claimed the row, so the job is in.
                return ScheduleResult(job_id=request.job_id, external_id=None, runner_type=self.engine.kind)


class Failover:
    """Temporal first behind a circuit breaker, PostgreSQL when it is open or Temporal fails."""

    def __init__(
        self, primary: Engine, fallback: Engine, breaker: CircuitBreaker, store: JobStore, *, bound: float
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        self._store = store
        self.bound: float | None = bound

    @property
    def circuit_state(self) -> CircuitState:
        """The breaker's current state."""
        return self.breaker.state

    @property
    def first_choice(self) -> Engine:
        """Temporal: the relay falls back per job, as a direct call does."""
        return self.primary

    async def relay(self, request: JobRequest) -> bool:
        """Start the outbox row on Temporal when the breaker allows; else, or on failure, queue it on PostgreSQL."""
        if self.breaker.allow():
            try:
                admission = await self.primary.adopt(request, within=self.bound)
                if isinstance(admission, Accepted):
                    self.breaker.record_success()
                    return True
                self._count_failure(admission)
            finally:
                self.breaker.release()
        await self.fallback.adopt(request)
        return True

    def _count_failure(self, admission: Refused | Ambiguous) -> None:
        match admission:
            case Refused(busy=True):
                pass  # held back for capacity: says nothing about Temporal's health
            case Refused(reason, misconfigured=True):
                log.error("Temporal refused the call as misconfigured: %s", reason)
                self.breaker.record_failure()
            case Refused():
                self.breaker.record_failure()
            case Ambiguous():
                self.breaker.record_failure(timed_out=True)

    async def schedule(self, request: JobRequest) -> ScheduleResult:
        """Temporal within the bound when the breaker allows; otherwise, or on failure, PostgreSQL."""
        if not self.breaker.allow():
            return await self._on_fallback(request)
        try:
            with schedule_span(request.name, request.tenant_id, self.primary.kind):
                admission = await self.primary.admit(request, within=self.bound)
                return await self._settle(request, admission)
        finally:
            self.breaker.release()  # a half-open probe that never reached Temporal must not stay taken

    async def schedule_many(self, batch: JobBatch) -> list[ScheduleResult]:
        """An open breaker: the batch to PostgreSQL in one statement; else each job as a call, concurrently.

        The Temporal engine bounds the starts in flight; each job falls back on its own.
        """
        if self.breaker.state is CircuitState.OPEN:
            results = []
            for job_id, admission in zip(batch.job_ids, await self.fallback.admit_many(batch), strict=True):
                if not isinstance(admission, Accepted):
                    raise EngineUnavailableError(f"job {job_id} was not accepted: {admission.reason}")
                results.append(admission.result)
            return results
        return list(await asyncio.gather(*(self.schedule(r) for r in batch.requests)))

    async def register_recurring(self, request: JobRequest, spec: ScheduleSpec) -> ScheduleResult:
        """A Temporal Schedule when the breaker allows (retiring an outage-time twin); else PostgreSQL."""
        if self.breaker.allow():
            try:
                match await self.primary.register_recurring(request, spec, within=self.bound):
                    case Accepted(result):
                        self.breaker.record_success()
                        await self._store.retire_postgres_schedule(
                            request.tenant_id, request.name, request.singleton_key
                        )
                        return result
                    case Refused(reason, misconfigured=True):
                        self.breaker.record_failure()
                        # A fault to fix, not an outage to wait out: said loudly (health reports it too).
                        log.error(
                            "Temporal refused recurring job %s; registered on PostgreSQL: %s", request.name, reason
                        )
                    case Refused(reason) | Ambiguous(reason):
                        self.breaker.record_failure()
                        log.warning("recurring job %s registered on PostgreSQL: %s", request.name, reason)
            finally:
                self.breaker.release()
        match await self.fallback.register_recurring(request, spec):
            case Accepted(result):
                # A Temporal Schedule of the same key (older, or created by a late answer) must not fire too.
                await self._store.retire_temporal_schedule(request.tenant_id, request.name, request.singleton_key)
                return result
            case Refused(reason) | Ambiguous(reason):
                raise EngineUnavailableError(reason)

    async def fail_back(self, request: JobRequest, spec: ScheduleSpec) -> bool:
        """Move a recurring job registered on PostgreSQL during an outage back to Temporal; True if moved.

        Registering adopts a Schedule a late answer left behind (same
        deterministic id); the PostgreSQL twin is retired only once Temporal
        has it, so at every moment one engine owns the schedule.
        """
        if not self.breaker.allow():
            return False
        try:
            match await self.primary.register_recurring(request, spec, within=self.bound):
                case Accepted():
                    self.breaker.record_success()
                    await self._store.retire_postgres_schedule(request.tenant_id, request.name, request.singleton_key)
                    return True
                case Refused(reason) | Ambiguous(reason):
                    self.breaker.record_failure()
                    log.info("recurring job %s stays on PostgreSQL for now: %s", request.name, reason)
                    return False
        finally:
            self.breaker.release()

    async def _settle(self, request: JobRequest, admission: Admission) -> ScheduleResult:
        match admission:
            case Accepted(result):
                self.breaker.record_success()
                return result
            case Refused(reason, busy=busy, misconfigured=misconfigured):
                if misconfigured:
                    # Not an outage to wait out: say so loudly (health reports it too); the job still runs.
                    log.error(
                        "Temporal refused job %s as misconfigured; it goes to PostgreSQL: %s", request.job_id, reason
                    )
                if not busy:  # a call we held back for capacity says nothing about Temporal's health
                    self.breaker.record_failure()
                return await self._hand_over(request, reason)
            case Ambiguous(reason):
                self.breaker.record_failure(timed_out=True)
                return await self._hand_over(request, reason)

    async def _hand_over(self, request: JobRequest, reason: str) -> ScheduleResult:
        owner = await self._store.hand_over(request, reason)
        log.warning("job %s handed to %s: %s", request.job_id, self.fallback.kind, reason)
        return ScheduleResult(job_id=request.job_id, external_id=None, runner_type=owner)

    async def _on_fallback(self, request: JobRequest) -> ScheduleResult:
        with schedule_span(request.name, request.tenant_id, self.fallback.kind):
            match await self.fallback.admit(request, within=self.bound):
                case Accepted(result):
                    return result
                case Refused(reason) | Ambiguous(reason):
                    raise EngineUnavailableError(f"job {request.job_id} was not accepted: {reason}")
