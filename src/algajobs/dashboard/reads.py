"""The dashboard's reads over the monitoring tables, each one named query in ``queries.sql``.

Reads that a runner already offers (one job, its steps) go through the
runner's store; these are the operator's cross-tenant views it has no call for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..db import Database
from ..enums import JobStatus, RunnerType
from .filters import Cursor, JobFilter


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


class DashboardReads:
    """Counts, throughput, the keyset job list and recurring schedules."""

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

    async def schedules(self, tenant: str | None, *, limit: int = 500) -> list[dict[str, Any]]:
        """Live recurring jobs on either engine."""
        return await self._db.fetch("dashboard_schedules", {"tenant": tenant, "limit": limit})
