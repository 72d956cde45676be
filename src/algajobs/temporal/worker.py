"""A Temporal worker that outlives the cluster: it waits while Temporal is down and is rebuilt on failure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NamedTuple

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from ..activities import JobActivities
from ..errors import ConfigurationError, EngineUnavailableError
from ..settings import Settings
from .connection import build_worker

log = logging.getLogger("algajobs.temporal")
_RETRY_MAX = 5.0
_HEALTHY_RUN = 30.0  # a worker that ran this long was healthy: the next failure retries quickly
_SHUTDOWN_SLACK = 10.0  # beyond the shutdown grace, for the SDK to stop; then again after cancelling it


class TaskQueuePlan(NamedTuple):
    """One task queue this process polls."""

    concurrency: int
    """Most handler activities run at once from it."""
    workflows: bool = True
    """False for a capped job type's own task queue: handler activities only."""


class SupervisedWorker:
    """Runs ``genericJobWorkflow`` and its activities: one SDK worker per served queue's task queue.

    It retries with backoff while the cluster is unreachable.
    """

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        settings: Settings,
        activities: JobActivities,
        task_queues: Callable[[], dict[str, TaskQueuePlan]],
    ) -> None:
        self._client = client
        self._settings = settings
        self._activities = activities
        self._task_queues = task_queues
        """What to poll, read when the worker starts: task queue name → its plan."""
        self._workers: list[Worker] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while the supervisor is active (the worker may be waiting for the cluster)."""
        return self._task is not None

    @property
    def polling(self) -> bool:
        """True while its SDK workers poll the cluster (not while it waits for the cluster to come back)."""
        return any(w.is_running for w in self._workers)

    def start(self) -> None:
        """Start supervising in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="algajobs-temporal-worker")

    async def stop(self) -> None:
        """Shut the worker down; running activities get the shutdown grace period to finish."""
        task, self._task = self._task, None
        if task is None:
            return
        workers, self._workers = self._workers, []
        running = [w for w in workers if w.is_running]
        if running:
            # Bounded: a workflow task whose bookkeeping keeps retrying (database unreachable) would
            # otherwise hold a SIGTERM forever. Its workflow is retried by another worker.
            limit = self._settings.shutdown_grace.total_seconds() + _SHUTDOWN_SLACK
            try:
                await asyncio.wait_for(asyncio.gather(*(w.shutdown() for w in running)), limit)
            except TimeoutError:
                log.error("Temporal worker did not shut down within %.0fs; abandoning its in-flight tasks", limit)
        task.cancel()
        # Bounded too: a cancelled SDK worker still waits, without a limit, for its pollers to
        # stop, and a workflow task stuck in the sandbox (seen on a loaded machine) holds one.
        done, _ = await asyncio.wait({task}, timeout=_SHUTDOWN_SLACK)
        if not done:
            log.error("Temporal worker did not stop %.0fs after cancellation; leaving it behind", _SHUTDOWN_SLACK)
            return
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _supervise(self) -> None:
        delay = 0.2
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                client = await self._client()
                await client.service_client.check_health(timeout=timedelta(seconds=2))
                self._workers = [
                    build_worker(
                        client,
                        self._settings,
                        self._activities,
                        task_queue=name,
                        concurrency=plan.concurrency,
                        workflows=plan.workflows,
                    )
                    for name, plan in self._task_queues().items()
                ]
                await _run_all(self._workers)
                return  # shutdown() was called
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() - started > _HEALTHY_RUN:
                    delay = 0.2
                if isinstance(exc, ConfigurationError):  # TLS or credentials refused: a fault to fix, said loudly
                    log.error("Temporal worker cannot connect: %s; retrying in %.1fs", exc, delay)
                else:
                    # An unreachable cluster is expected and said in one line; anything else gets its traceback.
                    expected = isinstance(exc, EngineUnavailableError | RPCError | RuntimeError)
                    log.warning(
                        "Temporal worker unavailable (%s); retrying in %.1fs", exc, delay, exc_info=not expected
                    )
            finally:
                self._workers = []
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)


async def _run_all(workers: list[Worker]) -> None:
    """Run the workers until all stop; one failing shuts the others down and raises its error."""
    runs = [asyncio.ensure_future(w.run()) for w in workers]
    try:
        await asyncio.gather(*runs)
    except BaseException:
        for worker in workers:
            if worker.is_running and not worker.is_shutdown:
                with contextlib.suppress(Exception):
                    await worker.shutdown()
        await asyncio.gather(*runs, return_exceptions=True)
        raise
