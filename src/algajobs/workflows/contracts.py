"""Wire shapes of ``genericJobWorkflow``, its signals, query and activities.

Field names are camelCase on the wire (fixed by the design, shared with
other-language clients) and snake_case in Python. Kept free of I/O imports so
the workflow sandbox can pass this module through once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    """Base of every wire model: camelCase JSON, snake_case attributes."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        frozen=True,
    )


class RetrySpec(Wire):
    """A RetryPolicy as plain data (Temporal matches non-retryable errors by type name)."""

    max_attempts: int
    initial_interval_seconds: float
    backoff_coefficient: float
    maximum_interval_seconds: float
    non_retryable: list[str] = []


class GenericJobInput(Wire):
    """Input of ``genericJobWorkflow``: ``{jobId, jobName, tenantId, data}`` plus run options."""

    job_id: str | None = None
    """None when a Temporal Schedule starts the run; the id is then derived from the workflow id."""
    job_name: str
    tenant_id: str
    data: Any = None
    user_id: str | None = None
    run_at: datetime | None = None
    retry: RetrySpec
    timeout_seconds: float
    schedule_id: str | None = None
    trace_context: dict[str, str] = {}


class GenericJobResult(Wire):
    """Result of ``genericJobWorkflow``: ``{success, jobId, error?, result?, completedAt}``."""

    success: bool
    job_id: str
    error: str | None = None
    result: Any = None
    completed_at: datetime


class CancelJobSignal(Wire):
    """Payload of the ``cancelJob`` signal."""

    reason: str | None = None
    cancelled_by: str | None = None


class UpdateProgressSignal(Wire):
    """Payload of the ``updateProgress`` signal."""

    progress: int
    message: str | None = None


class JobState(Wire):
    """Answer of the ``getJobState`` query."""

    step: str
    progress: int = 0
    message: str | None = None
    started_at: datetime | None = None
    error: str | None = None
    job_id: str | None = None
    cancel_requested: bool = False


class ExecuteJobInput(Wire):
    """Input of ``executeJobHandler``."""

    job_id: str
    job_name: str
    tenant_id: str
    data: Any = None
    user_id: str | None = None
    trace_context: dict[str, str] = {}


class UpdateJobStatusInput(Wire):
    """Input of ``updateJobStatus``; ``processing`` claims the job for this run."""

    job_id: str
    tenant_id: str
    status: str
    workflow_id: str
    run_id: str
    error: str | None = None
    result: Any = None
    job_name: str | None = None
    data: Any = None
    user_id: str | None = None
    schedule_id: str | None = None
    max_attempts: int | None = None


MISSING = "missing"
"""ClaimResult.status when the job's row was never written."""


class ClaimResult(Wire):
    """What ``updateJobStatus`` saw: whether this run owns the job, and its status."""

    claimed: bool
    status: str | None = None
    runner_type: str | None = None


class CreateJobDetailInput(Wire):
    """Input of ``createJobDetail``."""

    job_id: str
    tenant_id: str
    step_name: str
    status: str
    result: Any = None
    metadata: dict[str, Any] = {}
    retry_count: int = 0
