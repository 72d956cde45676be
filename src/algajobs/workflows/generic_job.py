"""``genericJobWorkflow``: wait (durably) until due, claim the job, run its handler, record the outcome."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    import pydantic

    from .. import validation
    from ..enums import JobStatus
    from ..errors import AlgaJobsError
    from .contracts import (
        CancelJobSignal,
        ClaimJob,
        ClaimResult,
        ClaimVerdict,
        CreateJobDetailInput,
        ExecuteJobInput,
        FinishJob,
        GenericJobInput,
        GenericJobResult,
        JobState,
        NewRow,
        ReleaseJob,
        RetrySpec,
        UpdateProgressSignal,
    )

T = TypeVar("T")
WORKFLOW_NAME = "genericJobWorkflow"
CANCELLED_ERROR_TYPE = "JobCancelledError"
NO_HANDLER_HERE = "NoHandlerHere"
"""The error type of an ``executeJobHandler`` attempt that reached a worker without the handler."""
QUEUE_PAUSED = "QueuePaused"
"""The error type of an ``executeJobHandler`` retry whose queue is paused."""
# Runs recorded before 0.3 failed a job no worker here could run; runs since wait for one.
_WAIT_PATCH = "algajobs-0.3-wait-for-worker"
_FIRST_WAIT = 1.0
_LONGEST_WAIT = 30.0
_LONGEST_PAUSED_WAIT = 5.0  # a resume takes effect within this
# A run that keeps waiting continues as new: its history stays bounded, and its next workflow
# task goes to any worker of the task queue, not the (sticky) one that lacks the handler.
_UNKNOWN_WAITS_PER_RUN = 3
_PAUSED_WAITS_PER_RUN = 500
_BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
# The claim may wait for a row still being written (see TemporalRecords.claim).
_CLAIM_TIMEOUT = timedelta(seconds=60)
# Bookkeeping writes retry until the database answers: losing one would leave the row wrong.
_BOOKKEEPING_RETRY = TemporalRetryPolicy(maximum_interval=timedelta(seconds=10))
# Schedule-fired runs have no job id of their own; derive one from the run's
# workflow id, deterministically, so a replay computes the same id.
_SCHEDULED_RUN_NAMESPACE = uuid.UUID("5f0c5a52-7d1e-4b0e-9a59-6f1f4b7c2e11")


def temporal_retry(spec: RetrySpec, *, spent: int = 0) -> TemporalRetryPolicy:
    """Translate the job's RetryPolicy into Temporal's; ``spent`` attempts ran in earlier runs."""
    left = spec.max_attempts if spec.max_attempts <= 0 else max(spec.max_attempts - spent, 1)
    return TemporalRetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_interval_seconds),
        backoff_coefficient=spec.backoff_coefficient,
        maximum_interval=timedelta(seconds=spec.maximum_interval_seconds),
        maximum_attempts=left,
        non_retryable_error_types=[*spec.non_retryable, CANCELLED_ERROR_TYPE],
    )


def heartbeat_timeout(job_timeout: timedelta) -> timedelta:
    """Heartbeats let a cancel reach the handler; a missed one means the worker died."""
    return min(job_timeout, timedelta(seconds=30))


# Outside temporalio's sandbox: the sandbox guards user workflow code, and this workflow
# is algajobs' own (handlers run in activities, never here), deterministic by construction
# and checked by the replay tests. Its per-task module isolation cost about 10 ms of
# worker CPU per job, half the worker's time (bench/temporal_overhead.py).
@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class GenericJobWorkflow:
    """Runs one job of any registered type; answers ``getJobState`` throughout."""

    def __init__(self) -> None:
        self._state = JobState(step="created")
        self._cancel: CancelJobSignal | None = None

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> GenericJobResult:
        """Run the job once it is due and return its outcome; malformed input fails the run at once."""
        job = _parse(raw)
        info = workflow.info()
        job_id = job.job_id or str(uuid.uuid5(_SCHEDULED_RUN_NAMESPACE, info.workflow_id))
        self._set(job_id=job_id)
        if job.run_at is not None and job.run_at > workflow.now():
            self._set(step="waiting")
            # A durable timer that still answers queries and reacts to cancelJob.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._cancel is not None, timeout=job.run_at - workflow.now())
        if self._cancel is not None:
            return await self._finish(job, job_id, JobStatus.CANCELLED, error=self._cancel_reason())

        claim = await self._claim(raw, job, job_id)
        if claim is None:
            return await self._finish(job, job_id, JobStatus.CANCELLED, error=self._cancel_reason())
        match claim.verdict:
            case ClaimVerdict.UNKNOWN_JOB | ClaimVerdict.PAUSED:  # replaying a run from before 0.3
                raise ApplicationError(
                    f"no handler registered for job {job.job_name!r}", type="UnknownJobError", non_retryable=True
                )
            case ClaimVerdict.NO_ROW:
                # The scheduling call failed to write the row and told its caller so: never run.
                return self._skipped(job_id, "not run: the job's row was never written (its schedule call failed)")
            case ClaimVerdict.SCHEDULE_INACTIVE:
                return self._skipped(job_id, "not run: its recurring job is not active (cancelled or moved)")
            case ClaimVerdict.TAKEN:
                reason = f"not run by Temporal: job is {claim.status} on {claim.runner_type}"
                await self._detail(job, job_id, "claim-lost", JobStatus.CANCELLED, {"reason": reason})
                return self._skipped(job_id, reason)

        self._set(step="running", started_at=workflow.now(), message=None)
        retry, timeout_seconds = job.retry or claim.retry, job.timeout_seconds or claim.timeout_seconds
        if retry is None or timeout_seconds is None:  # the claim answers with options whenever asked
            raise ApplicationError("no retry policy or timeout for this job", non_retryable=True)
        return await self._run_handler(raw, job, job_id, claim, retry, timedelta(seconds=timeout_seconds))

    async def _claim(self, raw: dict[str, Any], job: GenericJobInput, job_id: str) -> ClaimResult | None:
        """Claim the row, waiting while no worker here has the handler or the queue is paused; None if cancelled."""
        claim = await _bookkeeping("updateJobStatus", self._claim_input(job, job_id), ClaimResult, limit=_CLAIM_TIMEOUT)
        waits, earlier = 0, job.waits
        while claim.verdict in (ClaimVerdict.UNKNOWN_JOB, ClaimVerdict.PAUSED) and workflow.patched(_WAIT_PATCH):
            # The row stays queued meanwhile, so health shows the job waiting.
            paused = claim.verdict is ClaimVerdict.PAUSED
            if waits >= (_PAUSED_WAITS_PER_RUN if paused else _UNKNOWN_WAITS_PER_RUN):
                workflow.continue_as_new({**raw, "waits": earlier + waits})
            waits += 1
            self._set(step="waiting", message=_waiting_for(claim.verdict, job.job_name))
            longest = _LONGEST_PAUSED_WAIT if paused else _LONGEST_WAIT
            if await self._cancelled_within(earlier + waits, longest=longest):
                return None
            claim = await _bookkeeping(
                "updateJobStatus", self._claim_input(job, job_id), ClaimResult, limit=_CLAIM_TIMEOUT
            )
        return claim

    async def _run_handler(
        self,
        raw: dict[str, Any],
        job: GenericJobInput,
        job_id: str,
        claim: ClaimResult,
        retry: RetrySpec,
        time_limit: timedelta,
    ) -> GenericJobResult:
        """Run the handler activity and record its outcome.

        An attempt that reached a worker without the handler, or a retry whose
        queue is paused, hands the job back (``queued``) and continues as new:
        the next run claims it again once it can run, and health sees it wait.
        """
        try:
            result = await self._execute(job, job_id, retry, time_limit, claim.activity_task_queue)
        except ActivityError as exc:
            if self._cancel is not None or _is_cancellation(exc):
                return await self._finish(job, job_id, JobStatus.CANCELLED, error=self._cancel_reason())
            if _is_handed_back(exc) and workflow.patched(_WAIT_PATCH):
                reason = _describe(exc, time_limit)
                release = ReleaseJob(
                    job_id=job_id, tenant_id=job.tenant_id, run_id=workflow.info().run_id, reason=reason
                )
                await _bookkeeping("updateJobStatus", release, object)
                self._set(step="waiting", message=reason)
                workflow.continue_as_new({**raw, "attemptsSpent": _attempts_spent(exc, job.attempts_spent)})
            return await self._finish(job, job_id, JobStatus.FAILED, error=_describe(exc, time_limit))
        return await self._finish(job, job_id, JobStatus.COMPLETED, result=result)

    async def _execute(
        self, job: GenericJobInput, job_id: str, retry: RetrySpec, time_limit: timedelta, task_queue: str | None
    ) -> Any:
        """Run ``executeJobHandler`` until it ends or the job is cancelled (ActivityError on failure)."""
        handle = workflow.start_activity(
            "executeJobHandler",
            ExecuteJobInput(
                job_id=job_id,
                job_name=job.job_name,
                tenant_id=job.tenant_id,
                data=job.data,
                user_id=job.user_id,
                trace_context=job.trace_context,
                attempt_offset=job.attempts_spent,
            ),
            start_to_close_timeout=time_limit,
            heartbeat_timeout=heartbeat_timeout(time_limit),
            retry_policy=temporal_retry(retry, spent=job.attempts_spent),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            task_queue=task_queue,
        )
        await workflow.wait_condition(lambda: handle.done() or self._cancel is not None)
        if not handle.done():
            handle.cancel()
        return await handle

    @workflow.signal(name="cancelJob")
    def cancel_job(self, signal: CancelJobSignal) -> None:
        """Ask the job to stop: a waiting job never runs, a running handler is cancelled."""
        if self._cancel is None:
            self._cancel = signal
            self._set(cancel_requested=True)

    @workflow.signal(name="updateProgress")
    def update_progress(self, signal: UpdateProgressSignal) -> None:
        """Record progress reported by the handler."""
        self._set(progress=signal.progress, message=signal.message)

    @workflow.query(name="getJobState")
    def get_job_state(self) -> JobState:
        """Return the job's current step, progress and error."""
        return self._state

    # -- helpers -------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        self._state = self._state.model_copy(update=changes)

    async def _cancelled_within(self, waits: int, *, longest: float = _LONGEST_WAIT) -> bool:
        """Wait the ``waits``-th backoff (1 s doubling to ``longest``); True if a cancel arrived meanwhile."""
        pause = min(_FIRST_WAIT * 2 ** min(waits - 1, 16), longest)  # bounded exponent: waits carry over runs
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._cancel is not None, timeout=pause)
        return self._cancel is not None

    def _cancel_reason(self) -> str:
        if self._cancel is None:
            return "cancelled"
        by = f" by {self._cancel.cancelled_by}" if self._cancel.cancelled_by else ""
        return f"cancelled{by}: {self._cancel.reason or 'no reason given'}"

    def _claim_input(self, job: GenericJobInput, job_id: str) -> ClaimJob:
        info = workflow.info()
        new_row = None
        if not job.row_written:  # a Schedule's run or another client's start: no scheduler wrote the row
            max_attempts = job.retry.max_attempts if job.retry else None
            new_row = NewRow(data=job.data, user_id=job.user_id, schedule_id=job.schedule_id, max_attempts=max_attempts)
        return ClaimJob(
            job_id=job_id,
            tenant_id=job.tenant_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            job_name=job.job_name,
            new_row=new_row,
            want_options=job.retry is None or job.timeout_seconds is None,
        )

    def _skipped(self, job_id: str, reason: str) -> GenericJobResult:
        self._set(step="skipped", error=reason)
        return GenericJobResult(success=False, job_id=job_id, error=reason, completed_at=workflow.now())

    async def _detail(self, job: GenericJobInput, job_id: str, step: str, status: JobStatus, result: object) -> None:
        detail = CreateJobDetailInput(
            job_id=job_id, tenant_id=job.tenant_id, step_name=step, status=status, result=result
        )
        await _bookkeeping("createJobDetail", detail, str)

    async def _finish(
        self,
        job: GenericJobInput,
        job_id: str,
        status: Literal[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED],
        *,
        error: str | None = None,
        result: object = None,
    ) -> GenericJobResult:
        finish = FinishJob(job_id=job_id, tenant_id=job.tenant_id, status=status, error=error, result=result)
        await _bookkeeping("updateJobStatus", finish, object)  # nothing to read; 0.1 histories hold a value
        progress = 100 if status is JobStatus.COMPLETED else self._state.progress
        self._set(step=status.value, error=error, progress=progress)
        return GenericJobResult(
            success=status is JobStatus.COMPLETED,
            job_id=job_id,
            error=error,
            result=result,
            completed_at=workflow.now(),
        )


async def _bookkeeping(
    activity: str, arg: object, result_type: type[T], *, limit: timedelta = _BOOKKEEPING_TIMEOUT
) -> T:
    # Local activities: a row update needs no task-queue round trip through the server.
    result: T = await workflow.execute_local_activity(
        activity,
        arg,
        result_type=result_type,
        start_to_close_timeout=limit,
        retry_policy=_BOOKKEEPING_RETRY,
    )
    return result


def _parse(raw: object) -> GenericJobInput:
    """The input, validated here so a malformed one fails the run instead of its workflow tasks forever."""
    try:
        job = GenericJobInput.model_validate(raw)
        validation.tenant_id(job.tenant_id)
        if job.job_id is not None:
            validation.job_id(job.job_id)
        if job.run_at is not None and job.run_at.utcoffset() is None:
            # Compared with workflow.now() it would fail every workflow task, never the run.
            raise _malformed("runAt: a time without a UTC offset")
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
        raise _malformed(problems) from None
    except AlgaJobsError as exc:
        raise _malformed(str(exc)) from None
    return job


def _malformed(problem: str) -> ApplicationError:
    return ApplicationError(
        f"malformed genericJobWorkflow input: {problem}", type="MalformedJobInput", non_retryable=True
    )


def _waiting_for(verdict: ClaimVerdict, job_name: str) -> str:
    if verdict is ClaimVerdict.PAUSED:
        return "waiting: its queue is paused"
    return f"waiting for a worker with a handler for {job_name!r}"


def _attempts_spent(exc: ActivityError, before: int) -> int:
    """The attempts the handed-back job's handler had, as its last attempt reported them."""
    cause = exc.cause
    details = cause.details if isinstance(cause, ApplicationError) else ()
    return details[0] if details and isinstance(details[0], int) else before


def _is_handed_back(exc: ActivityError) -> bool:
    cause = exc.cause
    return isinstance(cause, ApplicationError) and cause.type in (NO_HANDLER_HERE, QUEUE_PAUSED)


def _is_cancellation(exc: ActivityError) -> bool:
    cause = exc.cause
    if isinstance(cause, CancelledError):
        return True
    return isinstance(cause, ApplicationError) and cause.type == CANCELLED_ERROR_TYPE


def _describe(exc: ActivityError, timeout: timedelta) -> str:
    """The error as stored in the job row; same wording as the PostgreSQL engine."""
    cause = exc.cause
    if isinstance(cause, ActivityTimeoutError):
        return f"HandlerTimeoutError: handler exceeded its timeout of {timeout.total_seconds():g}s"
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'Error'}: {cause.message}"
    return str(cause or exc)
