"""The runner seam: the one interface both engines and the router implement."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from . import scheduling
from .enums import JobStatus
from .errors import ValidationError
from .models import HealthReport, JobDetail, JobInfo, ScheduleResult
from .registry import JobRegistry
from .settings import Settings
from .store import JobStore


class RunnerState(StrEnum):
    """Lifecycle of a runner: closed → open → processing → open → closed."""

    CLOSED = "closed"
    OPEN = "open"
    """Connected; scheduling and reads work."""
    PROCESSING = "processing"
    """Open and running handlers (after ``start()``)."""


@runtime_checkable
class JobRunner(Protocol):
    """Schedule, inspect and run jobs; an async context manager."""

    async def __aenter__(self) -> Self:
        """Connect (and migrate); does not start processing."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop processing if started, then disconnect."""

    async def schedule_job(
        self,
        name: str,
        data: Any,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
    ) -> ScheduleResult:
        """Run ``name`` with ``data`` as soon as a worker is free."""

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
    ) -> ScheduleResult:
        """Run ``name`` at ``run_at`` (timezone-aware)."""

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
        """Run ``name`` on a cron or interval; same (tenant, name, key) updates in place."""

    async def cancel_job(self, job_id: Any, *, tenant_id: str) -> bool:
        """Cancel a queued job, ask a running one to stop, or remove a schedule."""

    async def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Queue a failed or cancelled job again with fresh attempts."""

    async def get_job_status(self, job_id: Any, *, tenant_id: str) -> JobInfo:
        """Return the job as the monitoring tables show it."""

    async def list_jobs(
        self,
        *,
        tenant_id: str,
        status: JobStatus | str | None = None,
        job_name: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Return this tenant's jobs, newest first."""

    async def get_job_details(self, job_id: Any, *, tenant_id: str) -> list[JobDetail]:
        """Return the steps a job recorded."""

    async def count_jobs_by_status(self, *, tenant_id: str, job_name: str | None = None) -> dict[JobStatus, int]:
        """Return this tenant's job counts per status."""

    async def start(self) -> None:
        """Begin processing jobs in this process."""

    async def stop(self) -> None:
        """Stop processing: finish or hand back in-flight jobs."""

    async def is_healthy(self) -> HealthReport:
        """Report each engine's health."""


class RunnerBase:
    """What every runner shares: the ``schedule_job`` front and the monitoring reads.

    Subclasses provide :meth:`submit` (route one validated job to their
    engine) and :attr:`store` (the monitoring tables).
    """

    settings: Settings
    registry: JobRegistry

    @property
    def store(self) -> JobStore:
        """The monitoring store."""
        raise NotImplementedError

    async def submit(self, request: scheduling.JobRequest) -> ScheduleResult:
        """Hand one validated job to the engine."""
        raise NotImplementedError

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
    ) -> ScheduleResult:
        """Run ``name`` with ``data`` now; ``job_id`` makes a repeated call idempotent."""
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority, job_id=job_id,
        )  # fmt: skip
        return await self.submit(request)

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
    ) -> ScheduleResult:
        """Run ``name`` at ``run_at`` (timezone-aware)."""
        if run_at is None:
            raise ValidationError("run_at is required")
        request = scheduling.prepare(
            self.registry, self.settings, name, data, tenant_id=tenant_id, user_id=user_id,
            singleton_key=singleton_key, priority=priority, run_at=run_at, job_id=job_id,
        )  # fmt: skip
        return await self.submit(request)

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
