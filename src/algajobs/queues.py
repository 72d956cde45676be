"""Named queues: their Temporal task queues, pausing and resuming, and job types no worker serves.

On Temporal each queue is a task queue derived from ``TEMPORAL_TASK_QUEUE``.
"""

from __future__ import annotations

from datetime import timedelta

from . import validation
from .db import Database
from .enums import RunnerType
from .models import PausedQueue, UnservedJobType
from .validation import DEFAULT_QUEUE

ANNOUNCE_EVERY = timedelta(seconds=5)
"""How often a worker renews its row in ``workers``."""
WORKER_ALIVE = ANNOUNCE_EVERY * 4
"""A worker whose row is older than this is presumed dead."""


def task_queue_for(base: str, queue: str) -> str:
    """The task queue of ``queue``: ``base`` itself (``alga-jobs``) for the default queue, else ``base.queue``."""
    return base if queue == DEFAULT_QUEUE else f"{base}.{queue}"


def type_task_queue(base: str, queue: str, job_name: str) -> str:
    """The task queue of a job type with a concurrency cap.

    Its handler activities run there, on workers polling it with that many
    slots, so Temporal itself holds the rest back.
    """
    return f"{task_queue_for(base, queue)}/{job_name}"


def queue_of(base: str, task_queue: str) -> str:
    """The queue whose task queue is ``task_queue`` (the default queue for ``base`` or a foreign name)."""
    prefix = f"{base}."
    return task_queue[len(prefix) :] if task_queue.startswith(prefix) else DEFAULT_QUEUE


class QueueAdmin:
    """Pause and resume queues; find job types that wait with no worker to serve them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def pause(self, queue: str, *, paused_by: str | None = None, reason: str | None = None) -> bool:
        """Pause ``queue``: nothing more is claimed from it on either engine. False if it was paused already."""
        params = {
            "queue": validation.queue_name(queue),
            "paused_by": validation.optional_text(paused_by, "paused_by"),
            "reason": validation.optional_text(reason, "reason"),
        }
        return bool(await self._db.fetch("pause_queue", params))

    async def resume(self, queue: str) -> bool:
        """Resume ``queue``: its waiting jobs run again. False if it was not paused."""
        return bool(await self._db.fetch("resume_queue", {"queue": validation.queue_name(queue)}))

    async def paused(self) -> list[PausedQueue]:
        """Every paused queue."""
        return [PausedQueue(**row) for row in await self._db.fetch("paused_queues", {})]

    async def unserved(self) -> list[UnservedJobType]:
        """Job types with queued jobs that no live worker serves in their queue, on their engine."""
        rows = await self._db.fetch("unserved_job_types", {"alive": WORKER_ALIVE})
        return [
            UnservedJobType(
                queue=r["queue"], job_name=r["type"], engine=RunnerType(r["runner_type"]), paused=r["paused"]
            )
            for r in rows
        ]
