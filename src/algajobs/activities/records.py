"""The Temporal engine's writes to the monitoring tables: claim, finish, attempts, schedules."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from ..db import Database
from ..encryption import Column, open_strict, seal
from ..enums import JobStatus, RunnerType
from ..validation import storable_text
from ..workflows.contracts import ClaimJob, ClaimResult, ClaimVerdict, FinishJob, ReleaseJob


class TemporalRecords:
    """Job-row transitions owned by the Temporal engine."""

    def __init__(self, db: Database, *, row_wait: float) -> None:
        self._db = db
        self.row_wait = row_wait

    def _result(self, value: Any, tenant_id: str) -> str | None:
        """A handler's result as the JSON text to store: sealed when JOB_ENCRYPTION_KEYS is set; None stays NULL."""
        if value is None:
            return None
        text = json.dumps(value)
        return text if self._db.keys is None else seal(self._db.keys, text, tenant=tenant_id, column=Column.RESULT)

    def _jsonb(self, data: Any, tenant_id: str) -> Jsonb:
        """Job data for a jsonb parameter: sealed when JOB_ENCRYPTION_KEYS is set."""
        keys = self._db.keys
        if keys is None:
            return Jsonb(data)
        return Jsonb(data, dumps=lambda v: seal(keys, json.dumps(v), tenant=tenant_id, column=Column.DATA))

    async def claim(self, claim: ClaimJob, *, max_attempts: int, queue: str) -> ClaimResult:
        """Claim the job for this run unless another engine (or a cancel) got there first.

        A fresh job's row is written while its workflow starts, so a claim can
        outrun the insert: a missing row is awaited for ``row_wait`` seconds,
        then reported as ``NO_ROW`` (the scheduling call failed and said so).
        A run no scheduler wrote a row for (a Schedule's, another client's)
        creates it; ``max_attempts`` and ``queue`` are recorded on such a row.
        A job in a paused queue is not claimed: the verdict is ``PAUSED``.
        """
        job_id = UUID(claim.job_id)
        params = {"tenant": claim.tenant_id, "job_id": job_id, "workflow_id": claim.workflow_id, "run_id": claim.run_id}
        if claim.new_row is not None:
            # No scheduler writes this row: the claim creates it, so there is nothing to wait for.
            await self._register_run(claim, job_id, max_attempts, queue)
            rows = await self._db.fetch("claim_for_temporal", params)
            if rows:
                return self._verdict(rows[0])
            return ClaimResult(verdict=ClaimVerdict.SCHEDULE_INACTIVE)
        deadline = time.monotonic() + self.row_wait
        delay = 0.002
        while not (rows := await self._db.fetch("claim_for_temporal", params)):
            if time.monotonic() >= deadline:
                return ClaimResult(verdict=ClaimVerdict.NO_ROW)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        return self._verdict(rows[0])

    @staticmethod
    def _verdict(row: dict[str, Any]) -> ClaimResult:
        verdict = ClaimVerdict.CLAIMED if row["claimed"] else ClaimVerdict.TAKEN
        return ClaimResult(
            verdict=ClaimVerdict.PAUSED if row["paused"] else verdict,
            status=JobStatus(row["status"]),
            runner_type=RunnerType(row["runner_type"]),
        )

    async def finish(self, finish: FinishJob) -> None:
        """Record the run's outcome, unless the row is finished or owned by the other engine."""
        await self._db.execute(
            "finish_temporal_job",
            {
                "tenant": finish.tenant_id,
                "job_id": UUID(finish.job_id),
                "status": finish.status,
                "error": storable_text(finish.error),
                "result": self._result(finish.result, finish.tenant_id),
            },
        )

    async def record_handler_result(self, tenant_id: str, job_id: UUID, result: Any) -> None:
        """Remember that the handler returned ``result`` (a retried activity then does not run it again)."""
        params = {"tenant": tenant_id, "job_id": job_id, "result": self._result(result, tenant_id)}
        await self._db.execute("record_handler_result", params)

    async def handler_result(self, tenant_id: str, job_id: UUID) -> tuple[bool, Any]:
        """``(True, result)`` if an earlier attempt's handler already returned, else ``(False, None)``."""
        rows = await self._db.fetch("handler_result", {"tenant": tenant_id, "job_id": job_id})
        if not rows:
            return False, None
        return True, open_strict(self._db.keys, rows[0]["result"], tenant=tenant_id, column=Column.RESULT)

    async def set_attempts(self, tenant_id: str, job_id: UUID, attempts: int) -> bool:
        """Record a Temporal retry attempt; True if the job's queue is paused (the attempt must wait)."""
        rows = await self._db.fetch("set_attempts", {"tenant": tenant_id, "job_id": job_id, "attempts": attempts})
        return bool(rows and rows[0]["paused"])

    async def release(self, release: ReleaseJob) -> None:
        """Hand this run's claimed job back to ``queued`` (a later run claims it)."""
        params = {
            "tenant": release.tenant_id,
            "job_id": UUID(release.job_id),
            "run_id": release.run_id,
            "reason": storable_text(release.reason),
        }
        await self._db.execute("release_temporal_job", params)

    async def register_waiting_run(self, claim: ClaimJob, queue: str) -> None:
        """Create the row of a run no worker here can claim yet (its handler is unknown here)."""
        given = claim.new_row.max_attempts if claim.new_row is not None else None
        await self._register_run(claim, UUID(claim.job_id), given or 1, queue)

    async def _register_run(self, claim: ClaimJob, job_id: UUID, max_attempts: int, queue: str) -> None:
        """Create the row of a run a Temporal Schedule fired or another client started."""
        assert claim.new_row is not None
        run = claim.new_row
        params = {
            "tenant": claim.tenant_id,
            "job_id": job_id,
            "type": claim.job_name,
            "user_id": run.user_id,
            "data": self._jsonb(run.data, claim.tenant_id),
            "max_attempts": max_attempts,
            "workflow_id": claim.workflow_id,
            "run_id": claim.run_id,
            "queue": queue,
        }
        if run.schedule_id is not None:
            await self._db.execute("register_scheduled_run", {**params, "schedule_id": UUID(run.schedule_id)})
        else:
            await self._db.execute("register_client_run", params)

    async def upsert_schedule(
        self,
        *,
        tenant_id: str,
        job_id: UUID,
        name: str,
        data: Any,
        user_id: str | None,
        priority: int,
        max_attempts: int,
        metadata: dict[str, Any],
        schedule_id: str,
        next_run_at: datetime,
        queue: str,
    ) -> bool:
        """Write the schedule's 'active' row; return True if it was new."""
        rows = await self._db.fetch(
            "upsert_temporal_schedule",
            {
                "tenant": tenant_id,
                "job_id": job_id,
                "type": name,
                "user_id": user_id,
                "data": self._jsonb(data, tenant_id),
                "priority": priority,
                "max_attempts": max_attempts,
                "metadata": Jsonb(metadata),
                "external_id": schedule_id,
                "run_at": next_run_at,
                "queue": queue,
            },
        )
        return bool(rows[0]["created"])
