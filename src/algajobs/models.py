"""Values the runner returns: schedule results, job views, health reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from .enums import JobStatus, RunnerType


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ScheduleResult(_Frozen):
    """What a ``schedule_*`` call returns."""

    job_id: UUID
    external_id: str | None
    runner_type: RunnerType
    created: bool = True
    """False when an existing job (same id or live singleton key) was returned instead."""


class JobInfo(_Frozen):
    """One job as the monitoring tables show it."""

    job_id: UUID
    tenant_id: str
    job_name: str
    status: JobStatus
    runner_type: RunnerType
    progress: int
    progress_message: str | None
    error: str | None
    result: Any
    data: Any
    metadata: dict[str, Any]
    user_id: str | None
    priority: int
    singleton_key: str | None
    attempts: int
    max_attempts: int
    external_id: str | None
    external_run_id: str | None
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobInfo:
        """Build from a ``jobs`` row."""
        return cls(
            job_id=row["job_id"],
            tenant_id=row["tenant"],
            job_name=row["type"],
            status=JobStatus(row["status"]),
            runner_type=RunnerType(row["runner_type"]),
            progress=row["progress"],
            progress_message=row["progress_message"],
            error=row["error"],
            result=row["result"],
            data=row["data"],
            metadata=row["metadata"],
            user_id=row["user_id"],
            priority=row["priority"],
            singleton_key=row["singleton_key"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            external_id=row["external_id"],
            external_run_id=row["external_run_id"],
            run_at=row["run_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
        )


class JobDetail(_Frozen):
    """One ``job_details`` row: a step a handler recorded."""

    detail_id: UUID
    job_id: UUID
    step_name: str
    status: JobStatus
    result: Any
    processed_at: datetime
    retry_count: int
    metadata: dict[str, Any]


class EngineHealth(_Frozen):
    """Whether one engine answered, and how fast."""

    engine: RunnerType
    healthy: bool
    latency_ms: float | None = None
    error: str | None = None
    misconfigured: bool = False
    """The engine refused our configuration (TLS, credentials, search attributes): a fault to fix, not an outage."""


class UnservedJobType(_Frozen):
    """Jobs of a type wait in a queue, but no live worker serves that type there on that engine."""

    queue: str
    job_name: str
    engine: RunnerType
    paused: bool = False
    """Its queue is paused too (a resume alone would still find no worker)."""

    def __str__(self) -> str:
        return f"no worker for type {self.job_name!r} in queue {self.queue!r} ({self.engine.value})"


class PausedQueue(_Frozen):
    """A queue nothing is claimed from until it is resumed."""

    queue: str
    paused_at: datetime
    paused_by: str | None = None
    reason: str | None = None


class HealthReport(_Frozen):
    """Health of every configured engine and, when one exists, the circuit.

    ``unserved`` and ``paused_queues`` are warnings, not failures: jobs wait
    (nothing is lost), and this process itself is fine.
    """

    healthy: bool
    engines: tuple[EngineHealth, ...]
    circuit_state: str | None = None
    unserved: tuple[UnservedJobType, ...] = ()
    """Job types with waiting jobs that no live worker serves (rolling deploy, missing worker)."""
    paused_queues: tuple[PausedQueue, ...] = ()
