"""Running one claimed job's handler and reducing what happened to an outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic

from .. import validation
from ..context import JobContext
from ..encryption import EncryptedPayload
from ..enums import JobStatus
from ..errors import JobCancelledError, PayloadDecryptionError, PayloadValidationError
from ..registry import JobDefinition


@dataclass(frozen=True)
class Completed:
    """The handler returned; its result already encoded as JSON (None for no result)."""

    result_json: str | None
    status = JobStatus.COMPLETED


@dataclass(frozen=True)
class Failed:
    """The handler raised or timed out."""

    error: BaseException
    retryable: bool = True
    status = JobStatus.FAILED

    @property
    def message(self) -> str:
        """The error as stored in the job row."""
        return f"{type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class Cancelled:
    """The handler stopped because cancellation was requested."""

    reason: str
    status = JobStatus.CANCELLED


Outcome = Completed | Failed | Cancelled


class HandlerTimeoutError(TimeoutError):
    """The handler ran longer than its registered timeout."""


async def execute(definition: JobDefinition, ctx: JobContext, data: Any) -> Outcome:
    """Run the handler under its timeout and classify the result; never raises."""
    if (unstarted := _not_started(ctx, data)) is not None:
        return unstarted
    # As on Temporal, a cancel interrupts an async handler at once (the handler
    # runs in this task: cancelling the task is the interrupt); a plain ``def``
    # runs in a thread that cannot be interrupted and sees the flag only.
    stops = _Stops(asyncio.current_task())
    if definition.is_async:
        ctx.interrupt_with(stops.cancel)
    # A timer of our own rather than asyncio.timeout: the same interrupt at a third of the cost per job.
    timer = asyncio.get_running_loop().call_later(definition.timeout.total_seconds(), stops.expire)
    try:
        result = await definition.invoke(ctx, data)
    except asyncio.CancelledError:
        if stops.outside:
            raise  # this task itself is being cancelled, not only the job
        if stops.cancelled:
            return Cancelled(ctx.cancel_reason or "cancelled")
        ctx.interrupt_with(None)  # the handler is already stopped: the flag must not cancel this task again
        ctx.request_cancel("timed out")  # lets a plain-def handler in its thread notice
        return Failed(HandlerTimeoutError(f"handler exceeded its timeout of {_human(definition.timeout)}"))
    except JobCancelledError as exc:
        return Cancelled(str(exc) or "cancelled")
    except pydantic.ValidationError as exc:
        return Failed(exc, retryable=False)  # stored payload no longer fits the model
    except Exception as exc:  # noqa: BLE001 - a handler may raise anything; it is recorded
        return Failed(exc)
    finally:
        timer.cancel()
        ctx.interrupt_with(None)  # the handler is over: a late cancel must not hit the bookkeeping
        stops.withdraw()
    if ctx.cancelled:
        return Cancelled(ctx.cancel_reason or "cancelled")
    return _completed(result)


class _Stops:
    """Why the handler's task was cancelled by :func:`execute`: a cancel request, its timeout, or both."""

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        if task is None:
            raise RuntimeError("a handler runs in a task")
        self._task = task
        self.cancelled = False
        self.expired = False
        self._sent = 0  # cancels sent to the task, to withdraw afterwards

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._interrupt()

    def expire(self) -> None:
        if not self.expired:
            self.expired = True
            self._interrupt()

    def _interrupt(self) -> None:
        # From inside the task (the handler asked for its own cancel) the flag is enough: a
        # cancel the task sends itself stays pending past uncancel() on Python < 3.13, and
        # would hit the outcome's write instead of the handler.
        if asyncio.current_task() is not self._task:
            self._sent += 1
            self._task.cancel()

    @property
    def outside(self) -> bool:
        """Something else (a worker shutting down) asked the task to stop too, or instead."""
        return self._task.cancelling() > self._sent

    def withdraw(self) -> None:
        """Take back our cancel requests, so they do not linger on the task after the handler."""
        while self._sent:
            self._sent -= 1
            self._task.uncancel()


def _not_started(ctx: JobContext, data: Any) -> Failed | Cancelled | None:
    """The outcome of a job whose handler must not start; None when it may."""
    if isinstance(data, EncryptedPayload):  # no key here opens it: the handler must not see the marker
        return Failed(PayloadDecryptionError(data.reason), retryable=False)
    if ctx.cancelled:  # asked to stop before it started (while claimed ahead, or claimed with a cancel pending)
        return Cancelled(ctx.cancel_reason or "cancelled")
    return None


def _completed(result: Any) -> Completed | Failed:
    if result is None:
        return Completed(None)
    try:
        return Completed(validation.encode_result(result))
    except PayloadValidationError as exc:  # NaN, NUL, a surrogate, a cycle, too large: no row could take it
        return Failed(exc, retryable=False)


def _human(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"
