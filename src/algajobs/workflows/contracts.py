"""Wire shapes of ``genericJobWorkflow``, its signals, query and activities.

Field names are camelCase on the wire (fixed by the design, shared with
other-language clients) and snake_case in Python. Kept free of I/O imports so
the workflow sandbox can pass this module through once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..enums import JobStatus, RunnerType


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


class ScheduledRun(Wire):
    """What the claim of a Schedule-fired run needs to create the run's own row."""

    job_name: str
    data: Any = None
    user_id: str | None = None
    schedule_id: str
    max_attempts: int


class ClaimJob(Wire):
    """``updateJobStatus`` input that claims the job for this run (status ``processing``)."""

    kind: Literal["claim"] = "claim"
    job_id: str
    tenant_id: str
    workflow_id: str
    run_id: str
    scheduled: ScheduledRun | None = None
    """Set only for a run a Temporal Schedule started: its row is created by the claim."""


class FinishJob(Wire):
    """``updateJobStatus`` input that records how the run ended."""

    kind: Literal["finish"] = "finish"
    job_id: str
    tenant_id: str
    status: Literal[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    error: str | None = None
    result: Any = None


UpdateJobStatusInput = Annotated[ClaimJob | FinishJob, Field(discriminator="kind")]
"""Input of ``updateJobStatus``: a claim or a finish, told apart by ``kind``."""


class ClaimVerdict(StrEnum):
    """How a claim ended."""

    CLAIMED = "claimed"
    """This run owns the job: run the handler."""
    TAKEN = "taken"
    """Another engine, a cancel or a finished run got there first."""
    NO_ROW = "no_row"
    """The row never appeared: the scheduling call failed and said so; never run."""
    SCHEDULE_INACTIVE = "schedule_inactive"
    """A Schedule fired but its recurring job is not active here (cancelled, moved to PostgreSQL,
    or its registration failed); never run."""


class ClaimResult(Wire):
    """What the claim saw: the verdict, and the row's status and owner when there is a row."""

    verdict: ClaimVerdict
    status: JobStatus | None = None
    runner_type: RunnerType | None = None


class CreateJobDetailInput(Wire):
    """Input of ``createJobDetail``."""

    job_id: str
    tenant_id: str
    step_name: str
    status: JobStatus
    result: Any = None
    metadata: dict[str, Any] = {}
    retry_count: int = 0
