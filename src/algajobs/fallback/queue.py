"""Queue operations on the ``jobs`` table: claim, finish, retry, release, recover."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from ..db import Database
from ..enums import JobStatus


@dataclass(frozen=True)
class ClaimedJob:
    """A job row this worker now holds under a lease."""

    tenant_id: str
    job_id: UUID
    name: str
    data: Any
    attempt: int
    max_attempts: int
    user_id: str | None
    cancel_requested: bool
    trace: dict[str, str] | None
    """The trace context stored when the job was scheduled (None when not traced)."""


class QueueOps:
    """The PostgreSQL engine's queue statements for one worker."""

    def __init__(self, db: Database, worker_id: str, lease: timedelta, types: list[str]) -> None:
        self._db = db
        self.worker_id = worker_id
        self._lease = lease
        self._types = types

    async def _run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._db.fetch(name, params)

    async def claim(self, limit: int) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs of this worker's types (one statement, ``SKIP LOCKED``)."""
        params = {"limit": limit, "worker_id": self.worker_id, "lease": self._lease, "types": self._types}
        rows = await self._run("claim_jobs", params)
        return [
            ClaimedJob(
                tenant_id=r["tenant"],
                job_id=r["job_id"],
                name=r["type"],
                data=r["data"],
                attempt=r["attempts"],
                max_attempts=r["max_attempts"],
                user_id=r["user_id"],
                cancel_requested=r["cancel_requested"],
                trace=r["trace"],
            )
            for r in rows
        ]

    async def complete(self, done: Sequence[tuple[str, UUID, str | None]]) -> None:
        """Mark a batch of ``(tenant, job_id, result_json)`` completed."""
        await self._run(
            "complete_jobs",
            {
                "tenants": [d[0] for d in done],
                "job_ids": [d[1] for d in done],
                "results": [d[2] for d in done],
                "worker_id": self.worker_id,
            },
        )

    async def finish(self, job: ClaimedJob, status: JobStatus, error: str | None) -> None:
        """End a held job as failed or cancelled."""
        await self._run(
            "finish_job",
            {
                "tenant": job.tenant_id,
                "job_id": job.job_id,
                "status": status,
                "error": error,
                "worker_id": self.worker_id,
            },
        )

    async def retry_later(self, job: ClaimedJob, error: str, delay: timedelta) -> None:
        """Requeue a held job to run again after ``delay``."""
        await self._run(
            "retry_job_later",
            {
                "tenant": job.tenant_id,
                "job_id": job.job_id,
                "error": error,
                "delay": delay,
                "worker_id": self.worker_id,
            },
        )

    async def release(self, jobs: Sequence[ClaimedJob]) -> None:
        """Hand held jobs back to the queue without spending an attempt."""
        if jobs:
            await self._run(
                "release_jobs",
                {
                    "tenants": [j.tenant_id for j in jobs],
                    "job_ids": [j.job_id for j in jobs],
                    "worker_id": self.worker_id,
                },
            )

    async def heartbeat(self, held: Sequence[tuple[str, UUID]]) -> list[UUID]:
        """Extend the leases of the ``(tenant, job_id)`` jobs this worker holds; return those asked to cancel."""
        params = {
            "worker_id": self.worker_id,
            "lease": self._lease,
            "tenants": [tenant for tenant, _ in held],
            "job_ids": [job_id for _, job_id in held],
        }
        rows = await self._run("extend_leases", params)
        return [r["job_id"] for r in rows if r["cancel_requested"]]

    async def recover_expired(self) -> int:
        """Requeue (or fail) jobs whose worker stopped heartbeating; return how many."""
        return len(await self._run("recover_expired", {}))
