"""The public runner interface (DESIGN §2) and its lifecycle states."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from .enums import JobStatus
from .models import HealthReport, JobDetail, JobInfo, ScheduleResult


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
        connection: Any = None,
    ) -> ScheduleResult:
        """Run ``name`` with ``data`` as soon as a worker is free (in ``connection``'s transaction if given)."""

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
        connection: Any = None,
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
        connection: Any = None,
    ) -> ScheduleResult:
        """Run ``name`` on a cron or interval; same (tenant, name, key) updates in place."""

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
        """Schedule a batch of jobs of one name."""

    async def wait_for_result(self, job_id: Any, *, tenant_id: str, timeout: float) -> Any:  # noqa: ASYNC109 - DESIGN §12
        """Return the job's result once it completes, or raise its typed failure."""

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
        """Report each engine's health, paused queues and job types no live worker serves."""

    async def pause_queue(self, queue: str, *, paused_by: str | None = None, reason: str | None = None) -> bool:
        """Hold ``queue``'s jobs on both engines until resumed; False if it was paused already."""

    async def resume_queue(self, queue: str) -> bool:
        """Release a paused queue's jobs; False if it was not paused."""
