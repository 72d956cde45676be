"""Wire shapes of ``genericJobWorkflow``, its signals, query and activities.

Field names are camelCase on the wire (fixed by the design, shared with
other-language clients) and snake_case in Python. Kept free of I/O imports so
the workflow sandbox can pass this module through once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ..enums import JobStatus, RunnerType

if TYPE_CHECKING:
    from ..retry import RetryPolicy


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

    @classmethod
    def of(cls, policy: RetryPolicy) -> RetrySpec:
        """The wire form of a handler's RetryPolicy."""
        return cls(
            max_attempts=policy.max_attempts,
            initial_interval_seconds=policy.initial_interval.total_seconds(),
            backoff_coefficient=policy.backoff_coefficient,
            maximum_interval_seconds=policy.maximum_interval.total_seconds(),
            non_retryable=list(policy.non_retryable_names),
        )


class GenericJobInput(Wire):
    """Input of ``genericJobWorkflow``: ``{jobId, jobName, tenantId, data}`` plus optional run options.

    The documented four fields are enough (unknown fields are ignored): an
    omitted ``retry`` or ``timeoutSeconds`` comes from the worker's registry.
    """

    job_id: str | None = None
    """Derived from the workflow id when absent (a Temporal Schedule's runs, or a caller that omits it)."""
    job_name: str
    tenant_id: str
    data: Any = None
    user_id: str | None = None
    run_at: datetime | None = None
    retry: RetrySpec | None = None
    timeout_seconds: float | None = None
    schedule_id: str | None = None
    trace_context: dict[str, str] = {}
    row_written: bool = False
    """Set only by algajobs runners: the scheduler writes the job's row (the commit point), so a run
    that finds none must skip the job. Other clients leave it out and their run creates its row."""
    attempts_spent: int = 0
    """Set when a run hands its job back and continues as new: the attempts its handler already had."""
    waits: int = 0
    """Set when a waiting run continues as new: how often earlier runs waited, so the backoff goes on growing."""


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
    attempt_offset: int = 0
    """Attempts spent by earlier runs of this job (handed back and continued as new)."""


class NewRow(Wire):
    """What a claim needs to create the run's own row: a Schedule fired it, or another client started it."""

    data: Any = None
    user_id: str | None = None
    schedule_id: str | None = None
    """Set for a Schedule's run: its row is created only while the schedule is active."""
    max_attempts: int | None = None
    """From the input's retry; None: from the worker's registry."""


class ClaimJob(Wire):
    """``updateJobStatus`` input that claims the job for this run (status ``processing``)."""

    kind: Literal["claim"] = "claim"
    job_id: str
    tenant_id: str
    workflow_id: str
    run_id: str
    job_name: str = ""
    new_row: NewRow | None = None
    """Set when no scheduler wrote the row (a Schedule's run, another client's start): the claim creates it."""
    want_options: bool = False
    """The input omitted retry or timeout: answer with the registry's."""


class FinishJob(Wire):
    """``updateJobStatus`` input that records how the run ended."""

    kind: Literal["finish"] = "finish"
    job_id: str
    tenant_id: str
    status: Literal[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    error: str | None = None
    result: Any = None


class ReleaseJob(Wire):
    """``updateJobStatus`` input that hands a claimed job back to ``queued`` (this run will not run it)."""

    kind: Literal["release"] = "release"
    job_id: str
    tenant_id: str
    run_id: str
    reason: str


UpdateJobStatusInput = Annotated[ClaimJob | FinishJob | ReleaseJob, Field(discriminator="kind")]
"""Input of ``updateJobStatus``: a claim, a finish or a release, told apart by ``kind``."""


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
    UNKNOWN_JOB = "unknown_job"
    """This worker has no handler under that name: the run waits for a worker that has one
    (a rolling deploy adding the type); before 0.3 the run failed."""
    PAUSED = "paused"
    """The job's queue is paused: the row stays queued and the run waits for a resume."""


class ClaimResult(Wire):
    """What the claim saw: the verdict, and the row's status and owner when there is a row."""

    @model_validator(mode="before")
    @classmethod
    def _from_release_0_1(cls, value: Any) -> Any:
        # Histories recorded by 0.1 hold {claimed, status} (status "missing": no row); they must replay.
        if isinstance(value, dict) and "verdict" not in value and "claimed" in value:
            status = value.get("status")
            verdict = "claimed" if value["claimed"] else "no_row" if status == "missing" else "taken"
            value = {**value, "verdict": verdict, "status": None if status == "missing" else status}
        return value

    verdict: ClaimVerdict
    status: JobStatus | None = None
    runner_type: RunnerType | None = None
    retry: RetrySpec | None = None
    """The registry's retry policy, when the claim asked for options."""
    timeout_seconds: float | None = None
    """The registry's timeout, when the claim asked for options."""
    activity_task_queue: str | None = None
    """Where the handler activity runs when not on the workflow's task queue: a type with a
    concurrency cap has a task queue of its own, whose workers run at most that many at once."""


class CreateJobDetailInput(Wire):
    """Input of ``createJobDetail``."""

    job_id: str
    tenant_id: str
    step_name: str
    status: JobStatus
    result: Any = None
    metadata: dict[str, Any] = {}
    retry_count: int = 0
