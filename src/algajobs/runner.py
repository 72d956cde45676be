"""The one runner: validates calls, owns the database, the store, the engines and the routing policy.

``schedule_job`` reads top-down: validate (``scheduling.prepare``) → routing
policy (``routing.py``) → an engine's admission (``fallback/engine.py`` or
``temporal/engine.py``) → the row (``store.py``). Postgres-only,
Temporal-only and failover are configurations of this class
(:class:`RunnerMode`); ``PostgresRunner``, ``TemporalRunner`` and
``FailoverRunner`` are the same class with the mode fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ClassVar, Self

from temporalio.client import Client

from . import scheduling
from .circuit import CircuitState
from .db import Database, joined
from .engine import Accepted, Engine
from .enums import JobStatus, RunnerType
from .errors import AlgaJobsError, JobStateError, RunnerStateError, ValidationError
from .failback import Failback
from .fallback import PostgresEngine, PostgresWorker
from .limits import Limits
from .migrations import migrate
from .models import EngineHealth, HealthReport, JobDetail, JobInfo, PausedQueue, ScheduleResult, UnservedJobType
from .outbox import Relay
from .presence import Presence
from .protocol import RunnerState
from .queues import QueueAdmin
from .registry import JobRegistry
from .results import wait_for_result
from .routing import Failover, Routing
from .schedule_spec import ScheduleSpec
from .settings import Settings
from .store import JobStore
from .supervisor import Supervisor
from .temporal.engine import TemporalEngine
from .wiring import RunnerMode as RunnerMode  # re-exported: users import it from here too
from .wiring import build

log = logging.getLogger("algajobs.runner")
MAX_BATCH = 10_000
_HEALTH_WAIT = 2.0


class Runner:
    """Schedules, inspects and runs jobs; an async context manager (``async with`` connects and migrates).

    Pass ``client`` to reuse a Temporal connection (tests pass the
    time-skipping environment's); otherwise ``TEMPORAL_ADDRESS`` is dialled,
    lazily in failover mode so the runner opens while the cluster is down.
    """

    default_mode: ClassVar[RunnerMode | None] = None

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        *,
        mode: RunnerMode | None = None,
        client: Client | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.mode = mode or self.default_mode or RunnerMode.from_settings(settings)
        self.state = RunnerState.CLOSED
        self._client = client
        self._db: Database | None = None
        self._store: JobStore | None = None
        self._engines: dict[RunnerType, Engine] = {}
        self._routing: Routing | None = None
        self._loops: Supervisor | None = None
        self._limits = Limits(registry, settings)
        self._presence: Presence | None = None
        self._serving: list[RunnerType] = []
        """Engines whose worker runs in this process (what the presence row announces)."""

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.state is not RunnerState.CLOSED:
            raise RunnerStateError("runner is already open")
        await migrate(self.settings)
        db = await Database.open(self.settings)
        try:
            store = JobStore(db)
            engines, routing = await build(
                self.mode, db, store, self.settings, self.registry, self._limits, client=self._client
            )
        except BaseException:
            await db.close()
            raise
        self._db, self._store, self._engines, self._routing = db, store, engines, routing
        self.state = RunnerState.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
            temporal = self._engines.get(RunnerType.TEMPORAL)
            if isinstance(temporal, TemporalEngine):
                await temporal.close()
        finally:
            if self._db is not None:
                await self._db.close()
            self._db = self._store = self._routing = None
            self._engines = {}
            self.state = RunnerState.CLOSED

    async def start(self, *, only: RunnerType | None = None) -> None:
        """Begin processing in this process: a worker per engine (or ``only`` that engine's)."""
        engines = self._require_engines()
        starting = [kind for kind in engines if (only is None or kind is only) and kind not in self._serving]
        for kind in starting:
            await engines[kind].start_worker()
        if self._loops is None:
            self._loops = Supervisor()
        if starting:
            self._serving.extend(starting)
            if idle := sorted(set(self._limits.queues) - set(self.registry.queues)):
                log.warning("this worker serves queue(s) %s but has no handler in them", ", ".join(idle))
            if self._presence is None:
                # Say what this process serves, so health can name a job type no worker serves.
                engines = self._engines
                self._presence = Presence(
                    self._require_db(), self._limits, lambda: [k for k in self._serving if engines[k].serving]
                )
                self._loops.start("presence", self._presence.run)
        if RunnerType.TEMPORAL in starting:
            routing = self._require_routing()
            self._loops.start("relay", Relay(self.store, routing, self.registry, self.settings).run)
            if isinstance(routing, Failover):
                self._loops.start("failback", Failback(self.store, routing, self.registry, self.settings).run)
        self.state = RunnerState.PROCESSING

    async def stop(self) -> None:
        """Stop processing: running jobs finish within the grace period or are handed back."""
        loops, self._loops = self._loops, None
        if loops is not None:
            await loops.stop()
        for engine in self._engines.values():
            await engine.stop_worker()
        presence, self._presence = self._presence, None
        if presence is not None:
            await presence.withdraw()
        self._serving = []
        if self.state is RunnerState.PROCESSING:
            self.state = RunnerState.OPEN

    # -- scheduling ----------------------------------------------------------

    async def schedule_job(
        self,
        name: str,
        data: Any,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
        job_id: Any = None,
        connection: Any = None,
    ) -> ScheduleResult:
        """Run ``name`` with ``data`` now; ``job_id`` makes a repeated call idempotent.

        With ``connection`` (a psycopg ``AsyncConnection`` in an open
        transaction) the job is written in that transaction: rolled back, it
        never existed; committed, it runs once.
        """
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority, job_id=job_id,
        )  # fmt: skip
        if connection is not None:
            return await self._enqueue(request, connection)
        return await self._require_routing().schedule(request)

    async def schedule_job_at(
        self,
        name: str,
        data: Any,
        run_at: datetime,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
        job_id: Any = None,
        connection: Any = None,
    ) -> ScheduleResult:
        """Run ``name`` at ``run_at`` (timezone-aware); ``connection`` as for :meth:`schedule_job`."""
        if run_at is None:
            raise ValidationError("run_at is required")
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority, run_at=run_at, job_id=job_id,
        )  # fmt: skip
        if connection is not None:
            return await self._enqueue(request, connection)
        return await self._require_routing().schedule(request)

    async def schedule_jobs(
        self,
        name: str,
        payloads: list[Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
        priority: int = 0,
        connection: Any = None,
    ) -> list[ScheduleResult]:
        """Schedule many jobs of one name; on PostgreSQL in a single statement (no singleton keys).

        ``connection`` writes them all in the caller's transaction, as for :meth:`schedule_job`.
        """
        if not isinstance(payloads, list | tuple) or not 1 <= len(payloads) <= MAX_BATCH:
            raise ValidationError(f"a batch is a list of 1..{MAX_BATCH} payloads")
        batch = scheduling.prepare_batch(
            self.registry, self.settings, name, list(payloads), tenant_id=tenant_id, user_id=user_id, priority=priority
        )
        if connection is not None:
            return await self._enqueue_many(batch, connection)
        return await self._require_routing().schedule_many(batch)

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
        connection: Any = None,
    ) -> ScheduleResult:
        """Run ``name`` on a cron or interval schedule; the same (tenant, name, key) is updated in place.

        With ``connection`` the schedule is written in the caller's
        transaction as a PostgreSQL schedule (a Temporal Schedule cannot join
        it); a failover worker moves it to Temporal once committed.
        """
        spec = ScheduleSpec.parse(interval)
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority,
        )  # fmt: skip
        if connection is None:
            return await self._require_routing().register_recurring(request, spec)
        engine = self._require_engines().get(RunnerType.POSTGRES) or self._require_routing().first_choice
        async with joined(connection, self.settings.schema_name) as tx:
            admission = await engine.register_recurring(request, spec, tx=tx)
        assert isinstance(admission, Accepted)  # a write in the caller's transaction has no other outcome
        return admission.result

    async def _enqueue(self, request: scheduling.JobRequest, connection: Any) -> ScheduleResult:
        async with joined(connection, self.settings.schema_name) as tx:
            return await self._require_routing().first_choice.enqueue(request, tx)

    async def _enqueue_many(self, batch: scheduling.JobBatch, connection: Any) -> list[ScheduleResult]:
        engine = self._require_routing().first_choice
        async with joined(connection, self.settings.schema_name) as tx:
            return [await engine.enqueue(request, tx) for request in batch.requests]

    async def fail_back_schedules(self) -> int:
        """Move recurring jobs registered on PostgreSQL during an outage back to Temporal; return how many.

        A failover worker does this on its own every ``JOB_CIRCUIT_COOL_DOWN``
        while the circuit is closed (see ``failback.py``).
        """
        routing = self._require_routing()
        if not isinstance(routing, Failover):
            return 0
        return await Failback(self.store, routing, self.registry, self.settings).move_schedules()

    async def wait_for_result(self, job_id: Any, *, tenant_id: str, timeout: float) -> Any:  # noqa: ASYNC109 - DESIGN §12
        """The job's result once it completes, whichever engine runs it; no polling (LISTEN).

        Raises :class:`JobFailedError`, :class:`JobCancelledError`, or
        :class:`JobTimeoutError` (a ``TimeoutError``) after ``timeout`` seconds.
        """
        return await wait_for_result(self.store, self.settings, job_id, tenant_id=tenant_id, timeout=timeout)

    async def cancel_job(self, job_id: Any, *, tenant_id: str, cancelled_by: str | None = None) -> bool:
        """Cancel: queued at once, running cooperatively, recurring removed; False if already finished.

        The row is cancelled first, so a run the engine cannot reach finds the
        job cancelled when it tries to claim it.
        """
        cancelled = await self.store.cancel(job_id, tenant_id=tenant_id)
        if cancelled is None:
            return False
        engine = self._engines.get(cancelled.runner_type)
        if engine is not None:
            await engine.cancel(cancelled, within=self._require_routing().bound, cancelled_by=cancelled_by)
        return True

    async def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Queue a failed or cancelled job (from either engine) again on PostgreSQL, with fresh attempts."""
        if RunnerType.POSTGRES not in self._require_engines():
            info = await self.store.get_job(job_id, tenant_id=tenant_id)
            raise JobStateError(f"job {info.job_id} cannot be retried without the PostgreSQL queue; schedule it again")
        job = await self.store.requeue(job_id, tenant_id=tenant_id)
        return ScheduleResult(job_id=job, external_id=None, runner_type=RunnerType.POSTGRES)

    # -- monitoring ----------------------------------------------------------

    @property
    def store(self) -> JobStore:
        """The monitoring store (RunnerStateError when closed)."""
        if self._store is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._store

    def engine(self, kind: RunnerType) -> Engine:
        """The engine of that kind (RunnerStateError if this runner has none or is closed)."""
        engine = self._require_engines().get(kind)
        if engine is None:
            raise RunnerStateError(f"a {self.mode} runner has no {kind} engine")
        return engine

    @property
    def worker(self) -> PostgresWorker | None:
        """The in-process PostgreSQL worker, once ``start()`` ran one."""
        postgres = self._engines.get(RunnerType.POSTGRES)
        return postgres.worker if isinstance(postgres, PostgresEngine) else None

    @property
    def circuit_state(self) -> CircuitState | None:
        """The circuit breaker's state (failover mode), else None."""
        return self._require_routing().circuit_state

    async def get_job_status(self, job_id: Any, *, tenant_id: str) -> JobInfo:
        """Return the job as the monitoring tables show it; JobNotFoundError for another tenant's."""
        return await self.store.get_job(job_id, tenant_id=tenant_id)

    async def list_jobs(
        self,
        *,
        tenant_id: str,
        status: JobStatus | str | None = None,
        job_name: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Return this tenant's jobs from either engine, newest first, optionally filtered."""
        return await self.store.list_jobs(
            tenant_id=tenant_id, status=status, job_name=job_name, limit=limit, offset=offset
        )

    async def get_job_details(self, job_id: Any, *, tenant_id: str) -> list[JobDetail]:
        """Return the steps the job's handler recorded."""
        return await self.store.get_job_details(job_id, tenant_id=tenant_id)

    async def count_jobs_by_status(self, *, tenant_id: str, job_name: str | None = None) -> dict[JobStatus, int]:
        """Return this tenant's job counts per status."""
        return await self.store.count_jobs_by_status(tenant_id=tenant_id, job_name=job_name)

    async def prune(self, older_than: timedelta | None = None) -> int:
        """Delete finished jobs older than ``older_than`` (default: ``JOB_RETENTION``); return how many."""
        return await self.store.prune(self.settings.retention if older_than is None else older_than)

    async def is_healthy(self) -> HealthReport:
        """Temporal's health (when used), PostgreSQL's (always: every mode keeps its rows there) and the circuit.

        Healthy when both are, except in failover mode, where PostgreSQL
        alone can take every job.
        """
        engines = self._require_engines()
        postgres = engines.get(RunnerType.POSTGRES)
        checks = [postgres.health(within=_HEALTH_WAIT) if postgres else self._require_db().ping(wait=_HEALTH_WAIT)]
        if (temporal := engines.get(RunnerType.TEMPORAL)) is not None:
            # Temporal answers within the call bound or counts as down, as a schedule call would.
            checks.insert(0, temporal.health(within=self._require_routing().bound or _HEALTH_WAIT))
        reports: list[EngineHealth] = list(await asyncio.gather(*checks))
        if self.mode is RunnerMode.FAILOVER:
            # PostgreSQL can take every job, but a misconfigured Temporal is a fault to fix, not to ride out.
            healthy = reports[-1].healthy and not any(r.misconfigured for r in reports)
        else:
            healthy = all(r.healthy for r in reports)
        unserved: list[UnservedJobType] = []
        paused: list[PausedQueue] = []
        if reports[-1].healthy:  # warnings need PostgreSQL; a down database is reported above
            queues = QueueAdmin(self._require_db())
            with contextlib.suppress(AlgaJobsError):
                unserved, paused = await asyncio.gather(queues.unserved(), queues.paused())
        return HealthReport(
            healthy=healthy,
            engines=tuple(reports),
            circuit_state=self.circuit_state,
            unserved=tuple(unserved),
            paused_queues=tuple(paused),
        )

    # -- queues --------------------------------------------------------------

    async def pause_queue(self, queue: str, *, paused_by: str | None = None, reason: str | None = None) -> bool:
        """Pause ``queue`` on both engines: its jobs wait, queued, until resumed. False if already paused."""
        return await QueueAdmin(self._require_db()).pause(queue, paused_by=paused_by, reason=reason)

    async def resume_queue(self, queue: str) -> bool:
        """Resume ``queue``: its waiting jobs run again. False if it was not paused."""
        return await QueueAdmin(self._require_db()).resume(queue)

    async def paused_queues(self) -> list[PausedQueue]:
        """Every paused queue, with who paused it and why."""
        return await QueueAdmin(self._require_db()).paused()

    def _require_engines(self) -> dict[RunnerType, Engine]:
        if self.state is RunnerState.CLOSED:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._engines

    def _require_db(self) -> Database:
        if self._db is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._db

    def _require_routing(self) -> Routing:
        if self._routing is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._routing


class PostgresRunner(Runner):
    """A :class:`Runner` on the PostgreSQL queue alone."""

    default_mode = RunnerMode.POSTGRES


class TemporalRunner(Runner):
    """A :class:`Runner` on Temporal alone: a job Temporal does not take is refused."""

    default_mode = RunnerMode.TEMPORAL


class FailoverRunner(Runner):
    """A :class:`Runner` on Temporal with the PostgreSQL queue behind a circuit breaker."""

    default_mode = RunnerMode.FAILOVER
