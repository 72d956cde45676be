"""The Temporal engine's writes to the monitoring tables (claim, finish, schedules)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from ..db import Pool, run_query
from ..enums import JobStatus
from ..workflows.contracts import MISSING, ClaimResult, UpdateJobStatusInput

# Longer than a scheduler's insert can take (its retries stop after 15 s, plus
# a pool wait), shorter than the claim activity's timeout.
ROW_WAIT = 40.0


class TemporalRecords:
    """Job-row transitions owned by the Temporal engine; every one retried on transient errors."""

    def __init__(self, pool: Pool, *, row_wait: float = ROW_WAIT) -> None:
        self._pool = pool
        self.row_wait = row_wait

    async def delete_unstarted(self, tenant_id: str, job_id: UUID) -> bool:
        """Remove a row whose workflow was refused; False if a workflow claimed it after all."""
        rows = await run_query(self._pool, "delete_unstarted_job", {"tenant": tenant_id, "job_id": job_id})
        return bool(rows)

    async def claim(self, tenant_id: str, job_id: UUID, workflow_id: str, run_id: str) -> ClaimResult:
        """Claim the job for this run unless another engine (or a cancel) got there first.

        The scheduler writes the row while it starts the workflow, so a claim
        can outrun the insert: a missing row is awaited for ``row_wait``
        seconds, then reported as ``missing`` (the scheduling call failed).
        """
        params = {"tenant": tenant_id, "job_id": job_id, "workflow_id": workflow_id, "run_id": run_id}
        deadline = time.monotonic() + self.row_wait
        delay = 0.002
        while not (rows := await run_query(self._pool, "claim_for_temporal", params)):
            if time.monotonic() >= deadline:
                return ClaimResult(claimed=False, status=MISSING)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        row = rows[0]
        return ClaimResult(claimed=row["claimed"], status=row["status"], runner_type=row["runner_type"])

    async def finish(self, tenant_id: str, job_id: UUID, status: JobStatus, *, error: str | None, result: Any) -> None:
        """Record the run's outcome, unless the row is finished or owned by the other engine."""
        await run_query(
            self._pool,
            "finish_temporal_job",
            {
                "tenant": tenant_id,
                "job_id": job_id,
                "status": status,
                "error": error,
                "result": None if result is None else json.dumps(result),
            },
        )

    async def set_attempts(self, tenant_id: str, job_id: UUID, attempts: int) -> None:
        """Record a Temporal retry attempt."""
        await run_query(self._pool, "set_attempts", {"tenant": tenant_id, "job_id": job_id, "attempts": attempts})

    async def register_scheduled_run(self, update: UpdateJobStatusInput, job_id: UUID) -> None:
        """Create the jobs row of a run started by a Temporal Schedule."""
        await run_query(
            self._pool,
            "register_scheduled_run",
            {
                "tenant": update.tenant_id,
                "job_id": job_id,
                "type": update.job_name,
                "user_id": update.user_id,
                "data": Jsonb(update.data),
                "max_attempts": update.max_attempts or 1,
                "schedule_id": update.schedule_id,
                "workflow_id": update.workflow_id,
                "run_id": update.run_id,
            },
        )

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
        rows = await run_query(
            self._pool,
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
