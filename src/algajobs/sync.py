"""A blocking facade over the async runner, for synchronous code: Django or Flask views, scripts, shells.

:class:`SyncRunner` owns one background thread running one event loop, and
one async runner (``create_runner``) opened on that loop. Each method hands
its coroutine to the loop (``asyncio.run_coroutine_threadsafe``) and blocks
the calling thread until it is done, so any number of threads may share one
facade: their calls interleave on the loop and share the runner's pool::

    with SyncRunner(Settings.load(), registry) as jobs:      # at process start
        job = jobs.schedule_job("invoice", {"n": 1}, tenant_id="t1")
        jobs.wait_for_result(job.job_id, tenant_id="t1", timeout=30)

Lifecycle: closed → ``open()`` (or ``with``) → open → ``close()`` → closed;
the facade may be opened again. A call while closed raises
:class:`RunnerStateError`, and so does a call still waiting when ``close()``
begins (it is cancelled).

Not supported: ``connection=`` (enqueue in the caller's transaction). The job
row has to be written on the caller's own connection inside its open
transaction, and the async runner writes only through a psycopg
``AsyncConnection`` on its own loop; a synchronous ``psycopg.Connection``
belongs to the calling thread and cannot be driven from there. Passing one
raises :class:`ValidationError`; use the async runner (and
``algajobs.sqlalchemy`` for SQLAlchemy) where the job must commit with your
data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from .enums import JobStatus, RunnerType
from .errors import RunnerStateError, ValidationError
from .factory import create_runner
from .models import HealthReport, JobDetail, JobInfo, ScheduleResult
from .protocol import RunnerState
from .registry import JobRegistry
from .settings import Settings

log = logging.getLogger("algajobs.sync")
T = TypeVar("T")
_JOIN_WAIT = 30.0  # seconds to wait for the loop thread to end; it is a daemon, so a stuck one cannot hold exit


class SyncRunner:
    """Blocking versions of the runner's methods, safe to call from many threads; a context manager.

    ``settings`` and ``registry`` are as for :func:`~algajobs.create_runner`
    (default: settings from the environment, an empty registry; a process
    that only schedules needs no handlers when a worker elsewhere runs them).
    """

    def __init__(self, settings: Settings | None = None, registry: JobRegistry | None = None) -> None:
        self._runner = create_runner(settings, registry)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._calls: set[concurrent.futures.Future[Any]] = set()

    # -- lifecycle -----------------------------------------------------------

    @property
    def state(self) -> RunnerState:
        """Closed, open, or processing (after :meth:`start`)."""
        return RunnerState.CLOSED if self._loop is None else self._runner.state

    def open(self) -> Self:
        """Start the loop thread and open the runner on it (connect, migrate); RunnerStateError if already open."""
        with self._lock:
            if self._loop is not None:
                raise RunnerStateError("SyncRunner is already open")
            ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
            thread = threading.Thread(target=_serve, args=(ready,), name="algajobs-sync-runner", daemon=True)
            thread.start()
            loop = ready.result()
            try:
                asyncio.run_coroutine_threadsafe(self._runner.__aenter__(), loop).result()
            except BaseException:
                _halt(loop, thread)
                raise
            self._loop, self._thread = loop, thread
        return self

    def close(self) -> None:
        """Cancel calls still waiting, stop processing, close the runner and end the thread; a no-op when closed."""
        with self._lock:
            if threading.current_thread() is self._thread:
                raise RunnerStateError("a SyncRunner cannot be closed from its own event loop (a handler it runs)")
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
            calls, self._calls = self._calls, set()
        if loop is None or thread is None:
            return
        for call in calls:
            call.cancel()
        try:
            asyncio.run_coroutine_threadsafe(self._runner.__aexit__(None, None, None), loop).result()
        finally:
            _halt(loop, thread)

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, *, only: RunnerType | None = None) -> None:
        """Run handlers on the facade's loop too (a worker per engine, or ``only`` one); see ``Runner.start``."""
        self._call(lambda: self._runner.start(only=only))

    def stop(self) -> None:
        """Stop processing: running jobs finish within the grace period or are handed back."""
        self._call(self._runner.stop)

    # -- scheduling ----------------------------------------------------------

    def schedule_job(
        self,
        name: str,
        data: Any,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
        job_id: Any = None,
        connection: None = None,
    ) -> ScheduleResult:
        """Run ``name`` with ``data`` now; ``job_id`` makes a repeated call idempotent.

        ``connection`` is not supported here (ValidationError): see the module docstring.
        """
        _refuse(connection)
        return self._call(
            lambda: self._runner.schedule_job(
                name,
                data,
                tenant_id=tenant_id,
                user_id=user_id,
                singleton_key=singleton_key,
                priority=priority,
                job_id=job_id,
            )
        )

    def schedule_job_at(
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
        connection: None = None,
    ) -> ScheduleResult:
        """Run ``name`` at ``run_at`` (timezone-aware); ``connection`` is not supported (ValidationError)."""
        _refuse(connection)
        return self._call(
            lambda: self._runner.schedule_job_at(
                name,
                data,
                run_at,
                tenant_id=tenant_id,
                user_id=user_id,
                singleton_key=singleton_key,
                priority=priority,
                job_id=job_id,
            )
        )

    def schedule_jobs(
        self,
        name: str,
        payloads: list[Any],
        *,
        tenant_id: str,
        user_id: str | None = None,
        priority: int = 0,
        connection: None = None,
    ) -> list[ScheduleResult]:
        """Schedule many jobs of one name; ``connection`` is not supported (ValidationError)."""
        _refuse(connection)
        return self._call(
            lambda: self._runner.schedule_jobs(name, payloads, tenant_id=tenant_id, user_id=user_id, priority=priority)
        )

    def schedule_recurring_job(
        self,
        name: str,
        data: Any,
        interval: str | timedelta,
        *,
        tenant_id: str,
        user_id: str | None = None,
        singleton_key: str | None = None,
        priority: int = 0,
        connection: None = None,
    ) -> ScheduleResult:
        """Run ``name`` on a cron or interval schedule, updated in place; ``connection`` is not supported."""
        _refuse(connection)
        return self._call(
            lambda: self._runner.schedule_recurring_job(
                name,
                data,
                interval,
                tenant_id=tenant_id,
                user_id=user_id,
                singleton_key=singleton_key,
                priority=priority,
            )
        )

    def cancel_job(self, job_id: Any, *, tenant_id: str, cancelled_by: str | None = None) -> bool:
        """Cancel: queued at once, running cooperatively, recurring removed; False if already finished."""
        return self._call(lambda: self._runner.cancel_job(job_id, tenant_id=tenant_id, cancelled_by=cancelled_by))

    def retry_job(self, job_id: Any, *, tenant_id: str) -> ScheduleResult:
        """Queue a failed or cancelled job again on PostgreSQL, with fresh attempts."""
        return self._call(lambda: self._runner.retry_job(job_id, tenant_id=tenant_id))

    def wait_for_result(self, job_id: Any, *, tenant_id: str, timeout: float) -> Any:
        """Block this thread until the job completes and return its result, or raise its typed failure.

        :class:`JobFailedError`, :class:`JobCancelledError`, or
        :class:`JobTimeoutError` after ``timeout`` seconds; other threads'
        calls go on meanwhile.
        """
        return self._call(lambda: self._runner.wait_for_result(job_id, tenant_id=tenant_id, timeout=timeout))

    # -- monitoring ----------------------------------------------------------

    def get_job_status(self, job_id: Any, *, tenant_id: str) -> JobInfo:
        """Return the job as the monitoring tables show it; JobNotFoundError for another tenant's."""
        return self._call(lambda: self._runner.get_job_status(job_id, tenant_id=tenant_id))

    def list_jobs(
        self,
        *,
        tenant_id: str,
        status: JobStatus | str | None = None,
        job_name: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Return this tenant's jobs from either engine, newest first, optionally filtered."""
        return self._call(
            lambda: self._runner.list_jobs(
                tenant_id=tenant_id, status=status, job_name=job_name, limit=limit, offset=offset
            )
        )

    def get_job_details(self, job_id: Any, *, tenant_id: str) -> list[JobDetail]:
        """Return the steps the job's handler recorded."""
        return self._call(lambda: self._runner.get_job_details(job_id, tenant_id=tenant_id))

    def count_jobs_by_status(self, *, tenant_id: str, job_name: str | None = None) -> dict[JobStatus, int]:
        """Return this tenant's job counts per status."""
        return self._call(lambda: self._runner.count_jobs_by_status(tenant_id=tenant_id, job_name=job_name))

    def is_healthy(self) -> HealthReport:
        """Each engine's health and the circuit state, as ``Runner.is_healthy``."""
        return self._call(self._runner.is_healthy)

    def pause_queue(self, queue: str, *, paused_by: str | None = None, reason: str | None = None) -> bool:
        """Pause ``queue`` on both engines, as ``Runner.pause_queue``."""
        return self._call(lambda: self._runner.pause_queue(queue, paused_by=paused_by, reason=reason))

    def resume_queue(self, queue: str) -> bool:
        """Resume ``queue``, as ``Runner.resume_queue``."""
        return self._call(lambda: self._runner.resume_queue(queue))

    # -- the bridge ----------------------------------------------------------

    def _call(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None:
                raise RunnerStateError("SyncRunner is not open; use 'with SyncRunner(settings, registry) as jobs:'")
            if threading.current_thread() is thread:
                # Blocking the loop on its own work would never return.
                raise RunnerStateError("a SyncRunner cannot be called from its own event loop; await the runner")
            future = asyncio.run_coroutine_threadsafe(work(), loop)  # the coroutine exists only once admitted
            self._calls.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise RunnerStateError("SyncRunner was closed while this call waited") from None
        finally:
            future.cancel()  # a caller interrupted (KeyboardInterrupt) leaves nothing running; no-op once done
            with self._lock:
                self._calls.discard(future)


def _refuse(connection: object) -> None:
    if connection is not None:
        raise ValidationError(
            "SyncRunner cannot enqueue in your transaction (connection=): the job row must be written on a psycopg "
            "AsyncConnection by the async runner; use 'await runner.schedule_job(..., connection=conn)'"
        )


def _serve(ready: concurrent.futures.Future[asyncio.AbstractEventLoop]) -> None:
    # asyncio.Runner cancels leftover tasks and closes async generators and the loop when the loop stops.
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        ready.set_result(loop)
        loop.run_forever()


def _halt(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(_JOIN_WAIT)
    if thread.is_alive():
        log.warning("the SyncRunner loop thread did not end within %ss; leaving it (a daemon)", _JOIN_WAIT)
