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
from ..enums import JobStatus, RunnerType
from ..workflows.contracts import ClaimJob, ClaimResult, ClaimVerdict, FinishJob


class TemporalRecords:
    """Job-row transitions owned by the Temporal engine."""

    def __init__(self, db: Database, *, row_wait: float) -> None:
        self._db = db
        self.row_wait = row_wait

    async def claim(self, claim: ClaimJob, *, max_attempts: int) -> ClaimResult:
        """Claim the job for this run unless another engine (or a cancel) got there first.

        A fresh job's row is written while its workflow starts, so a claim can
        outrun the insert: a missing row is awaited for ``row_wait`` seconds,
        then reported as ``NO_ROW`` (the scheduling call failed and said so).
        A run no scheduler wrote a row for (a Schedule's, another client's)
        creates it; ``max_attempts`` is recorded on such a row.
        """
        job_id = UUID(claim.job_id)
        params = {"tenant": claim.tenant_id, "job_id": job_id, "workflow_id": claim.workflow_id, "run_id": claim.run_id}
        if claim.new_row is not None:
            # No scheduler writes this row: the claim creates it, so there is nothing to wait for.
            await self._register_run(claim, job_id, max_attempts)
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
        return ClaimResult(
            verdict=ClaimVerdict.CLAIMED if row["claimed"] else ClaimVerdict.TAKEN,
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
                "error": finish.error,
                "result": None if finish.result is None else json.dumps(finish.result),
            },
        )

    async def record_handler_result(self, tenant_id: str, job_id: UUID, result: Any) -> None:
        """Remember that the handler returned ``result`` (a retried activity then does not run it again)."""
        params = {"tenant": tenant_id, "job_id": job_id, "result": None if result is None else json.dumps(result)}
        await self._db.execute("record_handler_result", params)

    async def handler_result(self, tenant_id: str, job_id: UUID) -> tuple[bool, Any]:
        """``(True, result)`` if an earlier attempt's handler already returned, else ``(False, None)``."""
        rows = await self._db.fetch("handler_result", {"tenant": tenant_id, "job_id": job_id})
        return (True, rows[0]["result"]) if rows else (False, None)

    async def set_attempts(self, tenant_id: str, job_id: UUID, attempts: int) -> None:
        """Record a Temporal retry attempt."""
        await self._db.execute("set_attempts", {"tenant": tenant_id, "job_id": job_id, "attempts": attempts})

    async def _register_run(self, claim: ClaimJob, job_id: UUID, max_attempts: int) -> None:
        """Create the row of a run a Temporal Schedule fired or another client started."""
        assert claim.new_row is not None
        run = claim.new_row
        params = {
            "tenant": claim.tenant_id,
            "job_id": job_id,
            "type": claim.job_name,
            "user_id": run.user_id,
            "data": Jsonb(run.data),
            "max_attempts": max_attempts,
            "workflow_id": claim.workflow_id,
            "run_id": claim.run_id,
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
    ) -> bool:
        """Write the schedule's 'active' row; return True if it was new."""
        rows = await self._db.fetch(
            "upsert_temporal_schedule",
            {
                "tenant": tenant_id,
                "job_id": job_id,
                "type": name,
                "user_id": user_id,
                "data": Jsonb(data),
                "priority": priority,
                "max_attempts": max_attempts,
                "metadata": Jsonb(metadata),
                "external_id": schedule_id,
                "run_at": next_run_at,
            },
        )
        return bool(rows[0]["created"])
