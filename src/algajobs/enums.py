"""Enumerations shared by both engines and mirrored in PostgreSQL."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Lifecycle of a job row; equal, value for value, to the ``job_status`` SQL enum."""

    PENDING = "pending"
    """Written, not yet handed to an engine."""
    QUEUED = "queued"
    """Waiting in an engine (immediately due, delayed, or between retries)."""
    PROCESSING = "processing"
    """Claimed by a worker; the handler is running."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ACTIVE = "active"
    """A live recurring schedule."""

    @property
    def is_finished(self) -> bool:
        """True for the terminal states a job never leaves on its own."""
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class RunnerType(StrEnum):
    """The engine that owns a job; equal to the ``runner_type`` SQL enum."""

    TEMPORAL = "temporal"
    POSTGRES = "postgres"
