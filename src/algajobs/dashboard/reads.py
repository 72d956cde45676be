"""The dashboard's reads over the monitoring tables, each one named query in ``queries.sql``.

Reads that a runner already offers (one job, its steps) go through the
runner's store; these are the operator's cross-tenant views it has no call for.
Queue reads that :class:`~algajobs.queues.QueueAdmin` offers (paused queues,
job types no worker serves) go through it, over the dashboard's pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from ..db import Database
from ..enums import JobStatus, RunnerType
from ..models import PausedQueue, UnservedJobType
from ..queues import WORKER_ALIVE, QueueAdmin
from .filters import Cursor, JobFilter

QUEUED_CAP = 1_000
"""The queues page counts a queue's queued jobs up to this many (then shows "1000+")."""


@dataclass(frozen=True)
class Counts:
    """Jobs per (status, engine), with totals per status and per engine."""

    cells: dict[JobStatus, dict[RunnerType, int]]
    by_engine: dict[RunnerType, int] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Counts:
        """Build from ``dashboard_counts`` rows; every status and engine appears, zeros included."""
        cells = {status: dict.fromkeys(RunnerType, 0) for status in JobStatus}
        for row in rows:
            cells[JobStatus(row["status"])][RunnerType(row["runner_type"])] = row["count"]
        by_engine = {engine: sum(cells[s][engine] for s in JobStatus) for engine in RunnerType}
        return cls(cells=cells, by_engine=by_engine)

    def total(self, status: JobStatus) -> int:
        """Jobs in ``status`` on any engine."""
        return sum(self.cells[status].values())


@dataclass(frozen=True)
class Minute:
    """Jobs that finished in one minute."""

    minute: datetime
    completed: int
    failed: int


@dataclass(frozen=True)
class Page:
    """One page of the job list and the cursor of the next, if there is one."""

    rows: list[dict[str, Any]]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class LiveWorker:
    """A worker process that renewed its ``workers`` row recently."""

    worker_id: str
    host: str
    pid: int
    engines: list[RunnerType]
    queues: list[str]
    types: list[str]
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class QueueState:
    """One known queue: its pause, its live workers, its queued jobs and the types no worker serves in it."""

    name: str
    paused: PausedQueue | None
    workers: int
    queued: int
    unserved: list[UnservedJobType]

    @property
    def queued_capped(self) -> bool:
        """True when the queue holds at least QUEUED_CAP queued jobs (the count stopped there)."""
        return self.queued >= QUEUED_CAP


@dataclass(frozen=True)
class QueuesView:
    """The queues page: every known queue and every live worker."""

    queues: list[QueueState]
    workers: list[LiveWorker]


class DashboardReads:
    """Counts, throughput, the keyset job list, recurring schedules, queues and live workers."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def counts(self, tenant: str | None) -> Counts:
        """Jobs per status and engine, for one tenant or all."""
        return Counts.from_rows(await self._db.fetch("dashboard_counts", {"tenant": tenant}))

    async def throughput(self, tenant: str | None) -> list[Minute]:
        """Completed and failed jobs per minute over the last hour (minutes with none are absent)."""
        rows = await self._db.fetch("dashboard_throughput", {"tenant": tenant})
        return [Minute(row["minute"], row["completed"], row["failed"]) for row in rows]

    async def jobs(self, where: JobFilter, *, after: Cursor | None, limit: int) -> Page:
        """Up to ``limit`` jobs matching ``where``, newest first, strictly after ``after``."""
        params = where.params() | {
            "after_at": after.created_at if after else None,
            "after_id": after.job_id if after else None,
            "limit": limit + 1,  # one more says whether a next page exists
        }
        rows = await self._db.fetch("dashboard_list_jobs", params)
        if len(rows) <= limit:
            return Page(rows=rows, next_cursor=None)
        last = rows[limit - 1]
        return Page(rows=rows[:limit], next_cursor=Cursor(last["created_at"], last["job_id"]))

    async def job_queue(self, tenant: str, job_id: UUID) -> str | None:
        """The queue of one job (None if the row is gone)."""
        rows = await self._db.fetch("dashboard_job_queue", {"tenant": tenant, "job_id": job_id})
        return rows[0]["queue"] if rows else None

    async def queues(self) -> QueuesView:
        """Every queue a live worker serves, that is paused or holds queued jobs; and the live workers."""
        rows = await self._db.fetch("dashboard_queues", {"alive": WORKER_ALIVE, "cap": QUEUED_CAP})
        unserved = await QueueAdmin(self._db).unserved()
        workers = await self._db.fetch("dashboard_workers", {"alive": WORKER_ALIVE})
        queues = [
            QueueState(
                name=row["queue"],
                paused=None if row["paused_at"] is None else PausedQueue(**_pause_of(row)),
                workers=row["workers"],
                queued=row["queued"],
                unserved=[u for u in unserved if u.queue == row["queue"]],
            )
            for row in rows
        ]
        return QueuesView(
            queues=queues,
            workers=[LiveWorker(**(row | {"engines": [RunnerType(e) for e in row["engines"]]})) for row in workers],
        )

    async def paused_queues(self) -> list[PausedQueue]:
        """Every paused queue (all a tenant-scoped dashboard shows of queues)."""
        return await QueueAdmin(self._db).paused()

    async def schedules(self, tenant: str | None, *, limit: int = 500) -> list[dict[str, Any]]:
        """Live recurring jobs on either engine."""
        return await self._db.fetch("dashboard_schedules", {"tenant": tenant, "limit": limit})


def _pause_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"queue": row["queue"], **{k: row[k] for k in ("paused_at", "paused_by", "reason")}}
