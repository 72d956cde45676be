"""Recurring jobs on PostgreSQL: registration and exactly-once firing per tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from ..db import Pool, with_retry
from ..enums import JobStatus, RunnerType
from ..models import ScheduleResult
from ..schedule_spec import ScheduleSpec
from ..scheduling import JobRequest
from ..sql import QUERIES


async def upsert_schedule(pool: Pool, request: JobRequest, spec: ScheduleSpec) -> ScheduleResult:
    """Create the schedule, or update the one with the same (tenant, name, singleton key)."""
    key = {"tenant": request.tenant_id, "type": request.name, "singleton_key": request.singleton_key or ""}
    now = datetime.now(UTC)
    params = {
        **key,
        "spec": spec.text,
        "data": Jsonb(request.data),
        "priority": request.priority,
        "max_attempts": request.definition.retry.max_attempts,
        "user_id": request.user_id,
        "next_run_at": spec.next_after(now),
        "metadata": Jsonb({"schedule": spec.text, "schedule_kind": spec.kind}),
    }

    async def run() -> ScheduleResult:
        async with pool.connection() as conn, conn.transaction():
            # Serialize registrations of one key so two callers cannot both insert.
            await conn.execute(QUERIES["lock_schedule_key"], key)
            cur = await conn.execute(QUERIES["find_schedule"], key)
            found = await cur.fetchone()
            if found:
                schedule_id: UUID = found["schedule_id"]
                await conn.execute(QUERIES["update_schedule"], {**params, "schedule_id": schedule_id})
                await conn.execute(QUERIES["update_schedule_job"], {**params, "schedule_id": schedule_id})
                return ScheduleResult(
                    job_id=schedule_id, external_id=None, runner_type=RunnerType.POSTGRES, created=False
                )
            await conn.execute(
                QUERIES["insert_job"],
                {
                    "tenant": request.tenant_id,
                    "job_id": request.job_id,
                    "type": request.name,
                    "status": JobStatus.ACTIVE,
                    "runner_type": RunnerType.POSTGRES,
                    "user_id": request.user_id,
                    "data": Jsonb(request.data),
                    "priority": request.priority,
                    "run_at": params["next_run_at"],
                    "max_attempts": params["max_attempts"],
                    "singleton_key": request.singleton_key,
                    "metadata": params["metadata"],
                    "external_id": None,
                },
            )
            await conn.execute(QUERIES["insert_schedule"], {**params, "schedule_id": request.job_id})
            return ScheduleResult(job_id=request.job_id, external_id=None, runner_type=RunnerType.POSTGRES)

    return await with_retry(run, what="upsert_schedule")


async def fire_due(pool: Pool, *, limit: int = 100) -> int:
    """Enqueue one job for every due schedule tick; return how many were enqueued.

    Each due schedule is row-locked by one caller (``SKIP LOCKED``) while its
    job is inserted and its next tick stored in the same transaction; the
    per-tick unique index makes a duplicate impossible even so.
    """
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(QUERIES["lock_due_schedules"], {"limit": limit})
        due = await cur.fetchall()
        if not due:
            return 0
        now = datetime.now(UTC)
        nexts = [ScheduleSpec.parse(row["spec"]).next_due(row["next_run_at"], now) for row in due]
        await conn.execute(
            QUERIES["insert_fired_jobs"],
            {
                "tenants": [r["tenant"] for r in due],
                "job_ids": [uuid4() for _ in due],
                "types": [r["type"] for r in due],
                "user_ids": [r["user_id"] for r in due],
                "datas": [Jsonb(r["data"]) for r in due],
                "priorities": [r["priority"] for r in due],
                "ticks": [r["next_run_at"] for r in due],
                "max_attempts": [r["max_attempts"] for r in due],
                "schedule_ids": [r["schedule_id"] for r in due],
            },
        )
        await conn.execute(
            QUERIES["advance_schedules"],
            {
                "tenants": [r["tenant"] for r in due],
                "schedule_ids": [r["schedule_id"] for r in due],
                "ticks": [r["next_run_at"] for r in due],
                "next_run_ats": nexts,
            },
        )
        return len(due)


async def seconds_until_next(pool: Pool, cap: timedelta) -> float:
    """Seconds until the earliest schedule is due, at most ``cap``."""
    async with pool.connection() as conn:
        cur = await conn.execute(QUERIES["next_schedule_due"])
        row = await cur.fetchone()
    limit = cap.total_seconds()
    if not row or row["next_run_at"] is None:
        return limit
    until: float = (row["next_run_at"] - datetime.now(UTC)).total_seconds()
    return max(0.0, min(limit, until))
