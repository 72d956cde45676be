"""Recurring jobs on PostgreSQL: registration and exactly-once firing per tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from psycopg.types.json import Jsonb

from ..db import Database, Transaction
from ..encryption import Column, KeySet, seal
from ..enums import JobStatus, RunnerType
from ..job_ids import new_job_ids
from ..models import ScheduleResult
from ..schedule_spec import ScheduleSpec
from ..scheduling import JobRequest


async def upsert_schedule(
    db: Database, request: JobRequest, spec: ScheduleSpec, *, tx: Transaction | None = None
) -> ScheduleResult:
    """Create the schedule, or update the one with the same (tenant, name, singleton key); in ``tx`` if given."""
    key = {"tenant": request.tenant_id, "type": request.name, "singleton_key": request.singleton_key or ""}
    now = datetime.now(UTC)
    data = Jsonb(request.data) if db.keys is None else _sealed(db.keys, request)
    params = {
        **key,
        "spec": spec.text,
        "data": data,
        "priority": request.priority,
        "max_attempts": request.definition.retry.max_attempts,
        "user_id": request.user_id,
        "queue": request.definition.queue,
        "next_run_at": spec.next_after(now),
        "metadata": Jsonb({"schedule": spec.text, "schedule_kind": spec.kind}),
    }

    async def run(tx: Transaction) -> ScheduleResult:
        # Serialize registrations of one key so two callers cannot both insert.
        await tx.execute("lock_schedule_key", key)
        found = await tx.fetch("find_schedule", key)
        if found:
            schedule_id: UUID = found[0]["schedule_id"]
            await tx.execute("update_schedule", {**params, "schedule_id": schedule_id})
            await tx.execute("update_schedule_job", {**params, "schedule_id": schedule_id})
            return ScheduleResult(job_id=schedule_id, external_id=None, runner_type=RunnerType.POSTGRES, created=False)
        await tx.execute(
            "insert_job",
            {
                "tenant": request.tenant_id,
                "job_id": request.job_id,
                "type": request.name,
                "status": JobStatus.ACTIVE,
                "runner_type": RunnerType.POSTGRES,
                "user_id": request.user_id,
                "data": data,
                "priority": request.priority,
                "run_at": params["next_run_at"],
                "max_attempts": params["max_attempts"],
                "singleton_key": request.singleton_key,
                "metadata": params["metadata"],
                "external_id": None,
                "queue": request.definition.queue,
            },
        )
        await tx.execute("insert_schedule", {**params, "schedule_id": request.job_id})
        return ScheduleResult(job_id=request.job_id, external_id=None, runner_type=RunnerType.POSTGRES)

    return await (run(tx) if tx is not None else db.transact(run, what="upsert_schedule"))


def _sealed(keys: KeySet, request: JobRequest) -> Jsonb:
    text = seal(keys, request.data_json, tenant=request.tenant_id, column=Column.DATA)
    return Jsonb(None, dumps=lambda _: text)


async def fire_due(db: Database, *, limit: int = 100) -> int:
    """Enqueue one job for every due schedule tick; return how many were enqueued.

    Each due schedule is row-locked by one caller (``SKIP LOCKED``) while its
    job is inserted and its next tick stored in the same transaction; the
    per-tick unique index makes a duplicate impossible even so.
    """

    async def run(tx: Transaction) -> int:
        due = await tx.fetch("lock_due_schedules", {"limit": limit})
        if not due:
            return 0
        now = datetime.now(UTC)
        nexts = [ScheduleSpec.parse(row["spec"]).next_due(row["next_run_at"], now) for row in due]
        await tx.execute(
            "insert_fired_jobs",
            {
                "tenants": [r["tenant"] for r in due],
                "job_ids": new_job_ids(len(due)),
                "types": [r["type"] for r in due],
                "user_ids": [r["user_id"] for r in due],
                "datas": [Jsonb(r["data"]) for r in due],
                "priorities": [r["priority"] for r in due],
                "ticks": [r["next_run_at"] for r in due],
                "max_attempts": [r["max_attempts"] for r in due],
                "schedule_ids": [r["schedule_id"] for r in due],
                "queues": [r["queue"] for r in due],
            },
        )
        await tx.execute(
            "advance_schedules",
            {
                "tenants": [r["tenant"] for r in due],
                "schedule_ids": [r["schedule_id"] for r in due],
                "ticks": [r["next_run_at"] for r in due],
                "next_run_ats": nexts,
            },
        )
        return len(due)

    return await db.transact(run, what="fire_due_schedules")


async def seconds_until_next(db: Database, cap: timedelta) -> float:
    """Seconds until the earliest schedule is due, at most ``cap``."""
    rows = await db.fetch("next_schedule_due")
    row = rows[0] if rows else None
    limit = cap.total_seconds()
    if not row or row["next_run_at"] is None:
        return limit
    until: float = (row["next_run_at"] - datetime.now(UTC)).total_seconds()
    return max(0.0, min(limit, until))
