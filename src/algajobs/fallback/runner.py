"""The PostgreSQL runner: the runner interface on the PostgreSQL queue alone."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Any, Self

from .. import scheduling, validation
from ..db import Pool, check_postgres, open_pool, with_retry
from ..enums import JobStatus, RunnerType
from ..errors import JobStateError, RunnerStateError, ValidationError
from ..migrations import migrate
from ..models import HealthReport, ScheduleResult
from ..registry import JobRegistry
from ..runner import RunnerBase, RunnerState
from ..schedule_spec import ScheduleSpec
from ..settings import Settings
from ..sql import QUERIES
from ..store import JobStore
from ..telemetry import carrier, schedule_span
from .schedules import upsert_schedule
from .worker import PostgresWorker

MAX_BATCH = 10_000


class PostgresRunner(RunnerBase):
    """Schedules onto and processes from the PostgreSQL queue.

    ``async with`` connects and applies migrations; ``start()`` runs a worker
    in this process. Monitoring reads come from the shared store.
    """

    def __init__(self, settings: Settings, registry: JobRegistry, *, auto_migrate: bool = True) -> None:
        self.settings = settings
        self.registry = registry
        self.state = RunnerState.CLOSED
        self._auto_migrate = auto_migrate
        self._pool: Pool | None = None
        self._store: JobStore | None = None
        self._worker: PostgresWorker | None = None

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self.state is not RunnerState.CLOSED:
            raise RunnerStateError("runner is already open")
        if self._auto_migrate:
            await with_retry(lambda: migrate(self.settings), deadline=5.0, what="migrate")
        self._pool = await open_pool(self.settings)
        self._store = JobStore(self._pool)
        self.state = RunnerState.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._pool is not None:
            await self._pool.close()
        self._pool = self._store = None
        self.state = RunnerState.CLOSED

    async def start(self) -> None:
        """Start a worker in this process (idempotent)."""
        store = self.store
        if self._worker is None:
            assert self._pool is not None
            self._worker = PostgresWorker(self._pool, self.settings, self.registry, store)
            await self._worker.start()
            self.state = RunnerState.PROCESSING

    async def stop(self) -> None:
        """Stop the worker: running jobs finish within the grace period or go back to the queue."""
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
            self.state = RunnerState.OPEN

    @property
    def store(self) -> JobStore:
        """The monitoring store (raises RunnerStateError when closed)."""
        if self._store is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._store

    @property
    def pool(self) -> Pool:
        """The connection pool (raises RunnerStateError when closed)."""
        return self._require_pool()

    @property
    def worker(self) -> PostgresWorker | None:
        """The in-process worker, when started."""
        return self._worker

    # -- scheduling ----------------------------------------------------------

    async def submit(self, request: scheduling.JobRequest) -> ScheduleResult:
        """Queue one validated job on PostgreSQL."""
        with schedule_span(request.name, request.tenant_id, RunnerType.POSTGRES):
            return await self.enqueue(request)

    async def enqueue(self, request: scheduling.JobRequest) -> ScheduleResult:
        """Write a validated request as a queued job, carrying the trace context."""
        trace_context = carrier()
        metadata = {"trace": trace_context} if trace_context else None
        return await self.store.insert_job(
            request, status=JobStatus.QUEUED, runner_type=RunnerType.POSTGRES, metadata=metadata
        )

    async def schedule_jobs(
        self,
        name: str,
        payloads: list[Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
        priority: int = 0,
    ) -> list[ScheduleResult]:
        """Queue many jobs of one name in a single statement (no singleton keys)."""
        if not 1 <= len(payloads) <= MAX_BATCH:
            raise ValidationError(f"a batch holds 1..{MAX_BATCH} payloads")
        requests = [
            scheduling.prepare(
                self.registry,
                self.settings,
                name,
                data,
                tenant_id=tenant_id,
                user_id=user_id,
                priority=priority,
            )
            for data in payloads
        ]
        first = requests[0]
        params = {
            "tenant": first.tenant_id,
            "type": name,
            "user_id": first.user_id,
            "priority": priority,
            "run_at": None,
            "max_attempts": first.definition.retry.max_attempts,
            "job_ids": [r.job_id for r in requests],
            "datas": [r.data_json for r in requests],
        }

        async def run() -> None:
            async with self._require_pool().connection() as conn:
                await conn.execute(QUERIES["insert_jobs"], params)

        await with_retry(run, what="insert_jobs")
        return [ScheduleResult(job_id=r.job_id, external_id=None, runner_type=RunnerType.POSTGRES) for r in requests]

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
        """Register a cron or interval schedule; the same (tenant, name, key) is updated."""
        spec = ScheduleSpec.parse(interval)
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority,
        )  # fmt: skip
        return await upsert_schedule(self._require_pool(), request, spec)

    async def cancel_job(self, job_id: Any, *, tenant_id: str) -> bool:
        """Cancel: queued at once, running cooperatively, recurring removed; False if finished."""
        return await self.store.cancel(job_id, tenant_id=tenant_id) is not None

    async def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Requeue a failed or cancelled job with fresh attempts."""
        tenant, job = validation.tenant_id(tenant_id), validation.job_id(job_id)
        async with self._require_pool().connection() as conn:
            cur = await conn.execute(QUERIES["retry_job"], {"tenant": tenant, "job_id": job})
            row = await cur.fetchone()
        if row is None:
            info = await self.store.get_job(job, tenant_id=tenant)
            raise JobStateError(f"job {info.job_id} is {info.status}; only failed or cancelled jobs can be retried")
        return ScheduleResult(job_id=job, external_id=None, runner_type=RunnerType.POSTGRES)

    # -- monitoring ----------------------------------------------------------

    async def prune(self, older_than: timedelta | None = None) -> int:
        """Delete finished jobs older than ``older_than`` (default: the retention setting)."""
        retention = self.settings.retention if older_than is None else older_than
        async with self._require_pool().connection() as conn:
            cur = await conn.execute(QUERIES["prune_finished"], {"retention": retention, "limit": 1_000_000})
            return cur.rowcount

    async def is_healthy(self) -> HealthReport:
        """Ping PostgreSQL; report latency or the error."""
        engine = await check_postgres(self.settings, self._require_pool())
        return HealthReport(healthy=engine.healthy, engines=(engine,))

    def _require_pool(self) -> Pool:
        if self._pool is None:
            raise RunnerStateError("runner is not open; use 'async with create_runner(...)'")
        return self._pool
