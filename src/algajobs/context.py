"""The typed context every handler receives, whichever engine runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from .enums import JobStatus
from .errors import JobCancelledError, ValidationError
from .once import StepFunction, step_name


class JobReporter(Protocol):
    """What an engine provides so a handler can report from inside a run."""

    async def report_progress(self, progress: int, message: str | None) -> None:
        """Persist the job's progress (0..100) and message."""

    async def add_detail(
        self,
        step_name: str,
        status: JobStatus,
        result: Any,
        metadata: dict[str, Any] | None,
    ) -> UUID:
        """Write one ``job_details`` row and return its id."""

    async def run_once(self, step: str, fn: StepFunction) -> Any:
        """Run ``fn`` in a transaction with the step's record, or return the result an earlier run committed."""


class JobContext:
    """A handler's view of the job it runs: ids, attempt, reporting and cancellation."""

    def __init__(
        self,
        *,
        job_id: UUID,
        tenant_id: str,
        job_name: str,
        attempt: int,
        user_id: str | None,
        reporter: JobReporter,
    ) -> None:
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.job_name = job_name
        self.attempt = attempt
        """1 for the first run, 2 for the first retry, and so on."""
        self.user_id = user_id
        self._reporter = reporter
        self._cancelled = False
        self._cancel_event: asyncio.Event | None = None  # made only if a handler waits for the cancel
        self._loop = asyncio.get_running_loop()
        self._interrupt: Callable[[], object] | None = None
        self.cancel_reason: str | None = None

    @property
    def cancelled(self) -> bool:
        """True once cancellation was requested; the handler should stop soon."""
        return self._cancelled

    def request_cancel(self, reason: str | None = None) -> None:
        """Mark the job cancelled and interrupt an async handler (called by the engine, not by handlers)."""
        if not self._cancelled:
            self.cancel_reason = reason
            self._cancelled = True
            if self._cancel_event is not None:
                self._cancel_event.set()
            if self._interrupt is not None:
                self._interrupt()

    def interrupt_with(self, interrupt: Callable[[], object] | None) -> None:
        """Set how a cancel request interrupts the running handler (called by the engine)."""
        self._interrupt = interrupt

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelledError` if cancellation was requested."""
        if self.cancelled:
            raise JobCancelledError(self.cancel_reason or "cancelled")

    async def wait_cancelled(self) -> None:
        """Return once cancellation is requested."""
        if self._cancelled:
            return
        if self._cancel_event is None:
            self._cancel_event = asyncio.Event()
        await self._cancel_event.wait()

    async def report_progress(self, progress: int, message: str | None = None) -> None:
        """Persist progress (an int 0..100) and an optional message; visible in status."""
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise ValidationError(f"progress must be an int in 0..100, got {progress!r}")
        await self._reporter.report_progress(progress, message)

    async def add_detail(
        self,
        step_name: str,
        *,
        status: JobStatus | str = JobStatus.COMPLETED,
        result: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> UUID:
        """Record one step of the job as a ``job_details`` row; returns its id."""
        if not step_name:
            raise ValidationError("step_name must not be empty")
        try:
            detail_status = JobStatus(status)
        except ValueError:
            raise ValidationError(f"unknown detail status {status!r}") from None
        return await self._reporter.add_detail(step_name, detail_status, result, metadata)

    async def once(self, step: str, fn: StepFunction) -> Any:
        """Apply ``fn``'s database effects exactly once per job, whatever happens to this run.

        ``fn(conn)`` runs in one transaction on a connection to algajobs'
        database (``DATABASE_URL``; rows come as dicts; the search path is
        algajobs' schema, then ``public``), together with a ``job_details``
        row named ``step`` that is unique per job. If any run of this job has
        already committed the step (a worker died before the job completed, a
        completion was lost in a Temporal outage, an earlier attempt failed
        later on), ``fn`` is not called and the result that run stored is
        returned. Either way the value is JSON-decoded, so every run sees the
        same thing. ``fn`` may be called again only when its transaction did
        not commit, so only its writes on ``conn`` are exactly-once: effects
        elsewhere (an e-mail, an HTTP call) keep at-least-once delivery.
        An exception from ``fn`` rolls the step back and propagates.
        """
        return await self._reporter.run_once(step_name(step), fn)

    # Plain ``def`` handlers run in a worker thread; these let them report
    # through the engine's event loop without owning one.
    def report_progress_sync(self, progress: int, message: str | None = None) -> None:
        """Blocking :meth:`report_progress` for plain ``def`` handlers."""
        asyncio.run_coroutine_threadsafe(self.report_progress(progress, message), self._loop).result()

    def once_sync(self, step: str, fn: StepFunction) -> Any:
        """Blocking :meth:`once` for plain ``def`` handlers; ``fn`` is still an ``async`` function."""
        return asyncio.run_coroutine_threadsafe(self.once(step, fn), self._loop).result()

    def add_detail_sync(
        self,
        step_name: str,
        *,
        status: JobStatus | str = JobStatus.COMPLETED,
        result: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> UUID:
        """Blocking :meth:`add_detail` for plain ``def`` handlers."""
        coro = self.add_detail(step_name, status=status, result=result, metadata=metadata)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
