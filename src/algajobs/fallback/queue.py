"""Queue operations on the ``jobs`` table: claim, finish, retry, release, recover."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

from ..db import Database, batch_spans, refused_for_its_data, utf8_size
from ..encryption import Column, KeySet, open_value, seal
from ..enums import JobStatus
from ..errors import DatabaseError
from ..limits import ClaimFilter
from ..validation import storable_text

log = logging.getLogger("algajobs.worker")
_COMPLETION_CHUNK_BYTES = 16 * 1024 * 1024
"""Results per completion statement. PostgreSQL parses them as one jsonb array, whose parse state
outgrows its 1 GiB allocation limit at about 16 million elements (32 MB of dense numbers): a chunk
this size never reaches it, and a result larger than this is sent alone, so only it can be refused."""


@dataclass(frozen=True)
class ClaimedJob:
    """A job row this worker now holds under a lease."""

    tenant_id: str
    job_id: UUID
    name: str
    queue: str
    data: Any
    attempt: int
    max_attempts: int
    user_id: str | None
    cancel_requested: bool
    trace: dict[str, str] | None
    """The trace context stored when the job was scheduled (None when not traced)."""

    @property
    def held(self) -> Held:
        """The job as held by this claim (its attempt included)."""
        return Held(self.tenant_id, self.job_id, self.attempt)


class Held(NamedTuple):
    """A job this worker holds, in the attempt it runs: a later claim of the same job is not this one's."""

    tenant_id: str
    job_id: UUID
    attempt: int


class Completion(NamedTuple):
    """A held job whose handler returned, with its result as JSON (None: no result)."""

    held: Held
    result_json: str | None


@dataclass(frozen=True)
class ClaimRound:
    """What one claim took, and whether to claim again before waiting for work."""

    jobs: list[ClaimedJob]
    contended: bool = False
    """Other workers took every job this claim chose: there is work, claim again."""
    more_tenants: bool = False
    """The ring was full: tenants beyond it may have work this claim did not look at."""


class QueueOps:
    """The PostgreSQL engine's queue statements for one worker."""

    def __init__(self, db: Database, worker_id: str, lease: timedelta) -> None:
        self._db = db
        self.worker_id = worker_id
        self._lease = lease
        # The ring of tenants resumes after the last one served, so every tenant gets its turn.
        self._after = ""

    async def _run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._db.fetch(name, params)

    async def claim(self, limit: int, allowed: ClaimFilter) -> ClaimRound:
        """Claim up to ``limit`` due jobs that ``allowed`` permits, shared between tenants (one statement).

        The next claim's ring starts where this one's ended, so every tenant gets its turn.
        """
        full = sum(1 for room in allowed.tenant_room.values() if room <= 0)
        params = {
            "limit": limit,
            "tenants": limit + full,  # the walk passes over tenants at their cap
            "after": self._after,
            "worker_id": self.worker_id,
            "lease": self._lease,
            "types": allowed.types,
            "type_queues": allowed.type_queues,
            "capped_types": list(allowed.type_room),
            "type_room": list(allowed.type_room.values()),
            "capped_queues": list(allowed.queue_room),
            "queue_room": list(allowed.queue_room.values()),
            "full_tenants": list(allowed.tenant_room),
            "tenant_room": list(allowed.tenant_room.values()),
            "tenant_cap": allowed.tenant_cap,
        }
        rows = await self._run("claim_jobs", params)
        if not rows:  # no tenant has queued jobs
            return ClaimRound([])
        self._after = rows[0]["ring_end"]
        more = rows[0]["ring_size"] >= limit
        if rows[0]["job_id"] is None:
            return ClaimRound([], contended=rows[0]["contended"], more_tenants=more)
        # Jobs claimed ahead start in list order as slots free: in the order the claim chose them
        # (priority, then age), which an UPDATE does not return them in.
        rows.sort(key=_start_order)
        return ClaimRound(self._claimed(rows), more_tenants=more)

    async def claim_notified(self, named: Sequence[tuple[str, UUID]], allowed: ClaimFilter) -> list[ClaimedJob]:
        """Claim the jobs insert notices named, as ``(tenant, job_id)``, by key; those still queued and allowed.

        For an idle worker only, and only without caps (``allowed`` is not
        consulted for room): jobs queued while it was busy wait their turn in
        :meth:`claim`, in priority order.
        """
        params = {
            "tenants": [tenant for tenant, _ in named],
            "job_ids": [job_id for _, job_id in named],
            "kinds": [f"{name}\x1f{queue}" for name, queue in zip(allowed.types, allowed.type_queues, strict=True)],
            "worker_id": self.worker_id,
            "lease": self._lease,
        }
        return self._claimed(await self._run("claim_notified_jobs", params))

    def _claimed(self, rows: list[dict[str, Any]]) -> list[ClaimedJob]:
        keys = self._db.keys  # data no key here opens becomes an EncryptedPayload: execute() fails that job
        return [
            ClaimedJob(
                tenant_id=r["tenant"],
                job_id=r["job_id"],
                name=r["type"],
                queue=r["queue"],
                data=open_value(keys, r["data"], tenant=r["tenant"], column=Column.DATA),
                attempt=r["attempts"],
                max_attempts=r["max_attempts"],
                user_id=r["user_id"],
                cancel_requested=r["cancel_requested"],
                trace=r["trace"],
            )
            for r in rows
        ]

    async def complete(self, done: Sequence[Completion]) -> int:
        """Mark a batch of held jobs completed; one no longer held in that attempt is left alone.

        Returns how many ended failed instead. When PostgreSQL refuses a chunk for
        what it holds (a result it cannot store: see :func:`refused_for_its_data`),
        the chunk is halved until the completions it refuses stand alone; each of
        those jobs ends ``failed`` with the server's reason, and every other
        completion is written. One result must not hold back the worker's other
        completions, whose leases the heartbeat would otherwise renew forever.
        """
        keys = self._db.keys
        results = [d.result_json for d in done] if keys is None else [_sealed(keys, d) for d in done]
        refused = 0
        for start, end in batch_spans([utf8_size(r or "") for r in results], _COMPLETION_CHUNK_BYTES):
            refused += await self._complete_chunk(done[start:end], results[start:end])
        return refused

    async def _complete_chunk(self, chunk: Sequence[Completion], results: Sequence[str | None]) -> int:
        """Write one chunk; the number of its completions that ended failed instead (see complete)."""
        params = {
            "tenants": json.dumps([d.held.tenant_id for d in chunk]),
            "job_ids": ",".join([d.held.job_id.hex for d in chunk]),  # 32 hex digits: valid uuid input
            "attempts": ",".join([str(d.held.attempt) for d in chunk]),
            "results": f"[{','.join(['null' if r is None else r for r in results])}]",
            "worker_id": self.worker_id,
        }
        try:
            await self._db.execute("complete_jobs", params)
        except DatabaseError as exc:
            if not refused_for_its_data(exc):
                raise
            if len(chunk) > 1:
                half = len(chunk) // 2
                first = await self._complete_chunk(chunk[:half], results[:half])
                return first + await self._complete_chunk(chunk[half:], results[half:])
            (refused,) = chunk
            log.error("job %s completed, but PostgreSQL cannot store its result: %s", refused.held.job_id, exc)
            ended = await self.finish(refused.held, JobStatus.FAILED, f"its result could not be stored: {exc}")
            return 1 if ended else 0  # not if its lease had lapsed: then it was not this worker's to end
        return 0

    async def finish(self, held: Held, status: JobStatus, error: str | None) -> bool:
        """End a held job (in the attempt that ran) as failed or cancelled; False if it was no longer held so."""
        rows = await self._run(
            "finish_job",
            {
                "tenant": held.tenant_id,
                "job_id": held.job_id,
                "status": status,
                "error": storable_text(error),
                "worker_id": self.worker_id,
                "attempt": held.attempt,
            },
        )
        return bool(rows)

    async def retry_later(self, job: ClaimedJob, error: str, delay: timedelta) -> None:
        """Requeue a held job to run again after ``delay``."""
        await self._run(
            "retry_job_later",
            {
                "tenant": job.tenant_id,
                "job_id": job.job_id,
                "error": storable_text(error),
                "delay": delay,
                "worker_id": self.worker_id,
                "attempt": job.attempt,
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
                    "attempts": [j.attempt for j in jobs],
                    "worker_id": self.worker_id,
                },
            )

    async def heartbeat(self, held: Sequence[Held]) -> list[UUID]:
        """Extend the leases of the jobs this worker holds (each in its attempt); return those asked to cancel."""
        params = {
            "worker_id": self.worker_id,
            "lease": self._lease,
            "tenants": [h.tenant_id for h in held],
            "job_ids": [h.job_id for h in held],
            "attempts": [h.attempt for h in held],
        }
        rows = await self._run("extend_leases", params)
        return [r["job_id"] for r in rows if r["cancel_requested"]]

    async def recover_expired(self) -> int:
        """Requeue (or fail) jobs whose worker stopped heartbeating; return how many."""
        return len(await self._run("recover_expired", {}))


def _start_order(row: dict[str, Any]) -> tuple[int, datetime]:
    return -row["priority"], row["run_at"]


def _sealed(keys: KeySet, done: Completion) -> str | None:
    if done.result_json is None:
        return None
    return seal(keys, done.result_json, tenant=done.held.tenant_id, column=Column.RESULT)
