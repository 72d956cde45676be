"""The PostgreSQL worker: claims jobs in batches, runs handlers, reports outcomes.

Loops, each small: *fetch* (claim when slots are free, else wait for a
notification, a delayed job's due time, or the poll interval), *flush*
(completions written in batches), *heartbeat* (leases extended, cancel
requests picked up), *maintenance* (expired leases recovered, old jobs
pruned) and *schedules* (due recurring ticks enqueued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from ..context import JobContext
from ..db import Database
from ..enums import JobStatus, RunnerType
from ..errors import UnknownJobError
from ..limits import Limits
from ..registry import JobDefinition, JobRegistry
from ..settings import Settings
from ..store import JobStore, StoreReporter
from ..supervisor import Supervisor
from ..telemetry import execute_span, record_run
from . import schedules
from .execution import Cancelled, Completed, Failed, Outcome, execute
from .listener import Listener
from .prefetch import ClaimAhead
from .queue import ClaimedJob, Completion, Held, QueueOps

log = logging.getLogger("algajobs.worker")
_PRUNE_EVERY = 600.0
_ERROR_PAUSE = 0.5
_CONTENDED_PAUSE = 0.002  # lets the other worker's claim commit before we read again
_REFILL_PAUSE = 0.002
# Empty rings walked in a row before waiting: each looks at the next batch of tenants.
_WALK_ON = 100
_LONGEST_SLOT_WAIT = 1.0
_STOP_WAIT = 10.0


class WorkerState(StrEnum):
    """Lifecycle of a worker."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class _Running:
    job: ClaimedJob
    ctx: JobContext
    task: asyncio.Task[None] = field(repr=False)


@dataclass
class WorkerStats:
    """Counts since start, for progress display and tests."""

    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    claimed_by_notice: int = 0
    """Jobs an idle worker claimed by the key their insert notice named (the fast path)."""


class PostgresWorker:
    """Runs jobs from the PostgreSQL queue with bounded concurrency."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: JobRegistry,
        store: JobStore,
        limits: Limits,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self.state = WorkerState.NEW
        self.stats = WorkerStats()
        self._db = db
        self._settings = settings
        self._registry = registry
        self._store = store
        self._limits = limits
        self._ops = QueueOps(db, self.worker_id, settings.lease_duration)
        self._running: dict[UUID, _Running] = {}
        # At most ``worker_concurrency`` handlers run at once; jobs claimed ahead wait for a slot.
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._ahead = ClaimAhead(settings.worker_concurrency, settings.fetch_batch_size)
        # A job claimed ahead that gets no slot this soon goes back to the queue (handlers got longer).
        self._slot_wait = min(_LONGEST_SLOT_WAIT, settings.lease_duration.total_seconds() / 4)
        self._unstarted: set[Held] = set()  # claimed, waiting for a slot
        # Jobs interrupted by stop(): they go back to the queue, whatever their handler returns.
        self._handing_back: set[UUID] = set()
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._next_due: float | None = None
        self._completions: list[Completion] = []
        self._completion_ready = asyncio.Event()
        # Jobs that insert notices named while this worker was idle, to claim by key (see _claim_notified),
        # unless other work became due since the last usual claim was sent.
        self._idle = False
        self._notified: list[tuple[str, UUID]] = []
        self._unnamed_work = False
        self._listener = Listener(settings, on_due=self._on_due, on_cancel=self._on_cancel, on_job=self._on_job)
        self._fetcher: asyncio.Task[None] | None = None
        # Side loops are supervised: a crash is logged with its traceback and the loop
        # restarted; one that keeps crashing stops the fetching (see ``failed``).
        self._supervisor = Supervisor()

    @property
    def failed(self) -> BaseException | None:
        """The error of a side loop that kept crashing (the worker then stops fetching), else None."""
        return self._supervisor.failed

    async def start(self) -> None:
        """Start every loop; returns at once, work continues in the background."""
        if self.state is not WorkerState.NEW:
            raise RuntimeError(f"worker is {self.state}, it can start only once")
        self.state = WorkerState.RUNNING
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="algajobs-fetch")
        self._fetcher.add_done_callback(_report_crash)
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "listen": self._listener.run,
            "flush": self._flush_loop,
            "heartbeat": self._heartbeat_loop,
            "maintenance": self._maintenance_loop,
            "schedules": self._schedule_loop,
        }
        for name, loop in loops.items():
            self._supervisor.start(name, loop)

    async def stop(self, grace: float | None = None) -> None:
        """Stop fetching; let running jobs finish for ``grace`` s, then hand the rest back."""
        if self.state is not WorkerState.RUNNING:
            return
        self.state = WorkerState.STOPPING
        grace = self._settings.shutdown_grace.total_seconds() if grace is None else grace
        self._wake.set()
        self._slot_freed.set()
        if self._fetcher:  # it finishes its current claim, so nothing claimed is dropped
            await _settled([self._fetcher], "the fetch loop")
        # Jobs claimed ahead that never got a slot go back at once, unrun: they must not start
        # during the grace period, and once out of the running set nothing renews their lease.
        unstarted = [r for r in self._running.values() if r.job.held in self._unstarted]
        for item in unstarted:
            item.task.cancel()
        await _settled([r.task for r in unstarted], "jobs claimed ahead")
        try:
            await self._ops.release([r.job for r in unstarted])
        except Exception:  # their leases lapse and maintenance requeues them
            log.exception("handing back %d job(s) claimed ahead failed", len(unstarted))
        running = list(self._running.values())
        if running:
            log.info("waiting up to %.1fs for %d running job(s)", grace, len(running))
            await asyncio.wait([r.task for r in running], timeout=grace)
        leftovers = list(self._running.values())
        for item in leftovers:
            self._handing_back.add(item.job.job_id)
            item.ctx.request_cancel("worker shutting down")
            item.task.cancel()
        await _settled([r.task for r in leftovers], "interrupted jobs")
        try:
            await self._ops.release([r.job for r in leftovers])
            await self._flush()
        finally:
            await self._supervisor.stop()
            self.state = WorkerState.STOPPED
        if unstarted or leftovers:
            log.info("handed %d unfinished job(s) back to the queue", len(unstarted) + len(leftovers))

    # -- notifications -------------------------------------------------------

    def _on_due(self, epoch: float | None) -> None:
        if epoch is None or epoch <= time.time():
            self._unnamed_work = True  # jobs no notice named are due: only the usual claim orders them all
            self._wake.set()
        elif self._next_due is None or epoch < self._next_due:
            self._next_due = epoch
            self._wake.set()  # an idle wait in progress must shorten to the new due time

    def _on_job(self, tenant: str, job_id: UUID) -> None:
        # Kept only while idle: a job queued while this worker is busy waits its turn in the usual claim.
        if self._idle and not self._limits.capped:
            if len(self._notified) < self._settings.worker_concurrency:
                self._notified.append((tenant, job_id))
            else:
                self._unnamed_work = True  # more than it could run: the usual claim picks by priority
        self._wake.set()

    def _on_cancel(self, job_id: UUID) -> None:
        item = self._running.get(job_id)
        if item:
            item.ctx.request_cancel("cancel requested")

    # -- fetch ---------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        batch = self._settings.fetch_batch_size
        concurrency = self._settings.worker_concurrency
        refill = max(1, min(batch, concurrency) // 4)
        walked, busy = 0, False
        while self.state is WorkerState.RUNNING:
            if self._supervisor.dead.is_set():
                log.critical("worker stops fetching: loop %r kept crashing", self._supervisor.failed_loop)
                return
            free = concurrency + self._ahead.jobs - len(self._running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                busy = True
                continue
            if busy and free < refill:
                # Saturated: let a few more jobs finish (a moment, never longer) so that one claim
                # fetches several instead of one claim per finished job.
                busy = False
                await asyncio.sleep(_REFILL_PAUSE)
                continue
            busy = False
            want = min(free, batch)
            allowed = self._limits.claim_filter()
            # This claim sees every job committed so far: notices from here on are news.
            self._wake.clear()
            self._unnamed_work = False
            if not allowed.types:  # every type it serves is at its cap: wait for one to finish
                await self._idle_wait()
                continue
            sent = time.perf_counter()
            try:
                claimed = await self._ops.claim(want, allowed)
            except Exception:
                log.exception("claiming jobs failed; retrying")
                await asyncio.sleep(_ERROR_PAUSE)
                continue
            for job in claimed.jobs:
                self._limits.take(job.name, job.queue, job.tenant_id)
                self._spawn(job)
            # A short claim is not an empty queue: tenants' shares and caps leave work for the next one.
            if claimed.jobs:
                walked = 0
                self._ahead.claimed(time.perf_counter() - sent)
                if len(claimed.jobs) < want or not self._ahead.jobs:
                    await asyncio.sleep(0)  # the claimed jobs start before the next claim is built
                # else more are likely queued: the next claim goes out first, these jobs run while it is in flight
            elif claimed.contended:  # another worker got there first: the queue is not empty
                await asyncio.sleep(_CONTENDED_PAUSE)
            elif claimed.more_tenants and walked < _WALK_ON:
                walked += 1  # the ring held only tenants with nothing due: look at the next ones
            else:
                walked = 0
                await self._idle_until_work()

    async def _idle_until_work(self) -> None:
        """Wait for work; jobs that notices named meanwhile are claimed by key at once."""
        await self._idle_wait()
        if self._notified:
            await self._claim_notified()

    async def _claim_notified(self) -> None:
        """Claim the jobs that notices named while this worker was idle, by key; the usual claim follows.

        The usual claim walks every tenant's queue: ~1.5 ms of server time where a
        lookup by key takes ~0.4. Only when the named jobs are all the work that
        became due since the last usual claim was sent (no other wake-up, no due
        time passed) and all fit in the free slots: then no job is chosen over
        another, so priority order and tenant shares are the usual claim's. With
        caps the usual claim decides (it knows the room). A commit's notices
        arrive together (one read of the listen connection), so the named jobs of
        one transaction are judged together.
        """
        named, self._notified = self._notified, []
        free = self._settings.worker_concurrency - len(self._running)
        due_passed = self._next_due is not None and self._next_due <= time.time()
        if self._unnamed_work or due_passed or len(named) > free or self.state is not WorkerState.RUNNING:
            return
        allowed = self._limits.claim_filter()
        if not allowed.types:
            return
        try:
            jobs = await self._ops.claim_notified(named, allowed)
        except Exception as exc:  # noqa: BLE001 - the usual claim comes next, and reports a lasting failure
            log.warning("claiming notified jobs failed (%s); claiming as usual", exc)
            return
        for job in jobs:
            self._limits.take(job.name, job.queue, job.tenant_id)
            self._spawn(job)
        self.stats.claimed_by_notice += len(jobs)
        if jobs:
            await asyncio.sleep(0)  # they start before the usual claim is built

    async def _idle_wait(self) -> None:
        timeout = self._settings.poll_interval.total_seconds()
        if self._next_due is not None:
            until = self._next_due - time.time()
            if until <= 0:
                self._next_due = None
                return
            timeout = min(timeout, until)
        self._idle = True
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            self._idle = False

    def _spawn(self, job: ClaimedJob) -> None:
        reporter = StoreReporter(self._store, job.tenant_id, job.job_id, job.attempt)
        ctx = JobContext(
            job_id=job.job_id,
            tenant_id=job.tenant_id,
            job_name=job.name,
            attempt=job.attempt,
            user_id=job.user_id,
            reporter=reporter,
        )
        if job.cancel_requested:
            ctx.request_cancel("cancel requested")
        self._unstarted.add(job.held)
        task = asyncio.create_task(self._run_job(job, ctx))
        self._running[job.job_id] = _Running(job, ctx, task)

    async def _run_job(self, job: ClaimedJob, ctx: JobContext) -> None:
        try:
            if not await self._take_slot(job, ctx):
                return
            try:
                self._unstarted.discard(job.held)
                started = time.perf_counter()
                await self._run_held(job, ctx)
                self._ahead.ran(time.perf_counter() - started)  # the whole time it held the slot
            finally:
                self._slots.release()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The outcome could not be written even after retries; the lease
            # expires and another attempt picks the job up.
            log.exception("recording the outcome of job %s failed", job.job_id, extra=_log_fields(job))
        finally:
            self._unstarted.discard(job.held)
            # Only this attempt's entry: after its lease lapsed, this worker may already run the next one.
            if (current := self._running.get(job.job_id)) is not None and current.job.attempt == job.attempt:
                del self._running[job.job_id]
            self._limits.give_back(job.name, job.queue, job.tenant_id)
            self._slot_freed.set()
            if self._limits.capped:
                self._wake.set()  # jobs held back by a cap may fit now

    async def _take_slot(self, job: ClaimedJob, ctx: JobContext) -> bool:
        """Wait for a free slot; False if none came soon enough and the job was let go unrun."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: no wait, no timer
            return True
        try:
            async with asyncio.timeout(self._slot_wait):
                await self._slots.acquire()
        except TimeoutError:
            # Its handlers got longer than the claim-ahead estimate: claim fewer ahead, and let
            # another worker, or a slot here later, take this job (the requeue wakes the workers).
            self._ahead.stalled()
            if ctx.cancelled:  # cancelled while it waited: it ends so, unrun, instead of queued again
                await self._ops.finish(job.held, JobStatus.CANCELLED, ctx.cancel_reason or "cancelled")
                self.stats.cancelled += 1
            else:
                await self._ops.release([job])
                log.info("job %s got no slot within %.2fs; handed back to the queue", job.job_id, self._slot_wait)
            return False
        return True

    async def _run_held(self, job: ClaimedJob, ctx: JobContext) -> None:
        try:
            definition = self._registry.get(job.name)
        except UnknownJobError as exc:
            await self._ops.finish(job.held, JobStatus.FAILED, str(exc))
            self.stats.failed += 1
            return
        started = time.perf_counter()
        with execute_span(job.name, job.job_id, job.tenant_id, job.attempt, RunnerType.POSTGRES, job.trace) as span:
            outcome = await execute(definition, ctx, job.data)
            record_run(span, RunnerType.POSTGRES, job.name, outcome.status, started, _error_of(outcome))
        await self._record(job, definition, outcome)

    async def _record(self, job: ClaimedJob, definition: JobDefinition, outcome: Outcome) -> None:
        match outcome:
            case Cancelled() if job.job_id in self._handing_back:
                pass  # the shutdown asked it to stop, not a user: release() requeues it, attempt unspent
            case Completed(result_json):
                self._completions.append(Completion(job.held, result_json))
                self._completion_ready.set()
                self.stats.completed += 1
            case Cancelled(reason):
                await self._ops.finish(job.held, JobStatus.CANCELLED, reason)
                self.stats.cancelled += 1
            case Failed() as failed:
                retry = definition.retry
                if (
                    failed.retryable
                    and job.attempt < job.max_attempts
                    and retry.should_retry(job.attempt, failed.error)
                ):
                    await self._ops.retry_later(job, failed.message, retry.delay_after(job.attempt))
                    self.stats.retried += 1
                else:
                    await self._ops.finish(job.held, JobStatus.FAILED, failed.message)
                    self.stats.failed += 1
                log.warning(
                    "job %s (%s, tenant %s) attempt %d failed: %s",
                    job.job_id,
                    job.name,
                    job.tenant_id,
                    job.attempt,
                    failed.message,
                    extra=_log_fields(job),
                )

    # -- background loops ----------------------------------------------------

    async def _flush(self) -> None:
        batch = list(self._completions)
        if batch:
            if refused := await self._ops.complete(batch):
                self.stats.completed -= refused  # counted when their handlers returned
                self.stats.failed += refused
            # Appends during the await landed after the batch; keep them.
            del self._completions[: len(batch)]

    async def _flush_loop(self) -> None:
        while True:
            await self._completion_ready.wait()
            self._completion_ready.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("writing completions failed; will retry")
                self._completion_ready.set()
                await asyncio.sleep(_ERROR_PAUSE)

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.lease_duration.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            # Running jobs, and finished ones whose completion is not written yet; not a job
            # whose outcome could not be written: its lease must lapse so it is retried.
            held = [r.job.held for r in self._running.values()]
            held += [c.held for c in self._completions]
            if not held:
                continue
            try:
                for job_id in await self._ops.heartbeat(held):
                    self._on_cancel(job_id)
            except Exception:
                log.exception("extending leases failed")

    async def _maintenance_loop(self) -> None:
        interval = min(self._settings.lease_duration.total_seconds() / 2, 5.0)
        last_prune = time.monotonic()  # the first prune waits a period too: a restart is not a reason
        while True:
            try:
                if await self._ops.recover_expired():
                    self._wake.set()
                if time.monotonic() - last_prune > _PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await self._store.prune(self._settings.retention)
            except Exception:
                log.exception("queue maintenance failed")
            await asyncio.sleep(interval)

    async def _schedule_loop(self) -> None:
        cap = self._settings.poll_interval
        while True:
            try:
                while await schedules.fire_due(self._db):
                    pass
                pause = await schedules.seconds_until_next(self._db, cap)
            except Exception:
                log.exception("firing recurring schedules failed")
                pause = _ERROR_PAUSE
            await asyncio.sleep(max(pause, 0.01))


async def _settled(tasks: list[asyncio.Task[None]], what: str) -> None:
    """Wait for tasks that were told to end, but never forever: a stop that hangs is worse than a late one."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=_STOP_WAIT)
    if pending:
        log.error("%s did not end within %.0fs of stop(); cancelling", what, _STOP_WAIT)
        for task in pending:
            task.cancel()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.critical("the fetch loop crashed; this worker claims no more jobs", exc_info=error)


def _log_fields(job: ClaimedJob) -> dict[str, object]:
    """Structured fields for log records about one job (for JSON log formatters)."""
    return {"job_id": str(job.job_id), "tenant_id": job.tenant_id, "job_name": job.name, "attempt": job.attempt}


def _error_of(outcome: Outcome) -> str | None:
    return outcome.message if isinstance(outcome, Failed) else None
