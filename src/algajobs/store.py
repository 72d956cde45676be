"""The monitoring store: ``jobs`` and ``job_details``, the one truth users read.

Both engines write every transition here; every read is scoped by tenant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from psycopg.types.json import Jsonb

from . import validation
from .db import Database, Transaction
from .encryption import Column, open_value, seal
from .enums import JobStatus, RunnerType
from .errors import JobNotFoundError, JobStateError, ValidationError
from .models import JobDetail, JobInfo, ScheduleResult
from .once import StepFunction, run_once
from .scheduling import JobRequest

MAX_PAGE = validation.MAX_PAGE


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel changed: the status before and after, and who owns the job."""

    previous_status: JobStatus
    status: JobStatus
    runner_type: RunnerType
    external_id: str | None


class JobStore:
    """Tenant-scoped reads and writes of the monitoring tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        """The database this store writes to."""
        return self._db

    async def _execute(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return await self._db.fetch(name, params)

    def _opened(self, row: dict[str, Any], *columns: Column) -> dict[str, Any]:
        """``row`` with its payload columns decrypted for a reader (an EncryptedPayload where no key opens one)."""
        keys, tenant = self._db.keys, row["tenant"]
        for column in columns or (Column.DATA, Column.RESULT):
            row[column.value] = open_value(keys, row[column.value], tenant=tenant, column=column)
        return row

    async def insert_job(
        self,
        request: JobRequest,
        *,
        status: JobStatus,
        runner_type: RunnerType,
        metadata: dict[str, Any] | None = None,
        external_id: str | None = None,
        tx: Transaction | None = None,
        _again: bool = True,
    ) -> ScheduleResult:
        """Write the job row (in ``tx``, the caller's transaction, when given); an existing id or singleton key wins."""
        run = self._execute if tx is None else tx.fetch
        keys, data_json = self._db.keys, request.data_json
        if keys is not None:
            data_json = seal(keys, data_json, tenant=request.tenant_id, column=Column.DATA)
        params = {
            "tenant": request.tenant_id,
            "job_id": request.job_id,
            "type": request.name,
            "status": status,
            "runner_type": runner_type,
            "user_id": request.user_id,
            "data": Jsonb(request.data, dumps=lambda _: data_json),
            "priority": request.priority,
            "run_at": request.run_at,
            "max_attempts": request.definition.retry.max_attempts,
            "singleton_key": request.singleton_key,
            "metadata": Jsonb(metadata or {}),
            "external_id": external_id,
            "queue": request.definition.queue,
        }
        if await run("insert_job", params):
            return ScheduleResult(job_id=request.job_id, external_id=external_id, runner_type=runner_type)
        rows = await run("find_live_job", params)
        if not rows and _again:
            # The conflicting job finished between the two statements; the key is free again.
            return await self.insert_job(
                request,
                status=status,
                runner_type=runner_type,
                metadata=metadata,
                external_id=external_id,
                tx=tx,
                _again=False,
            )
        if not rows:
            raise JobStateError(f"job {request.job_id} conflicts with a job that keeps changing state")
        row = rows[0]
        return ScheduleResult(
            job_id=row["job_id"],
            external_id=row["external_id"],
            runner_type=RunnerType(row["runner_type"]),
            # Only this call knows a fresh id: a row holding it is its own, from an
            # insert that the retry wrapper repeated after its answer was lost.
            created=request.fresh_id and row["job_id"] == request.job_id,
        )

    async def get_job(self, job_id: object, *, tenant_id: object) -> JobInfo:
        """Return one job of this tenant, or raise JobNotFoundError."""
        key = _key(job_id, tenant_id)
        rows = await self._execute("get_job", key)
        if not rows:
            raise JobNotFoundError(f"job {key['job_id']} not found")
        return JobInfo.from_row(self._opened(rows[0]))

    async def list_jobs(
        self,
        *,
        tenant_id: object,
        status: JobStatus | str | None = None,
        job_name: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Return this tenant's jobs, newest first, filtered by status and name.

        ``limit`` is an int in 1..MAX_PAGE and ``offset`` an int in 0..2**63-1
        (bools and numeric strings are refused); ValidationError otherwise.
        """
        page_limit, page_offset = validation.page(limit, offset)
        rows = await self._execute(
            "list_jobs",
            {
                "tenant": validation.tenant_id(tenant_id),
                "status": None if status is None else _status(status),
                "type": validation.optional_text(job_name, "job_name"),
                "limit": page_limit,
                "offset": page_offset,
            },
        )
        return [JobInfo.from_row(self._opened(row)) for row in rows]

    async def count_jobs_by_status(self, *, tenant_id: object, job_name: str | None = None) -> dict[JobStatus, int]:
        """Return how many of this tenant's jobs are in each status (zeros included)."""
        params = {"tenant": validation.tenant_id(tenant_id), "type": validation.optional_text(job_name, "job_name")}
        rows = await self._execute("count_jobs_by_status", params)
        counts = dict.fromkeys(JobStatus, 0)
        counts.update({JobStatus(row["status"]): row["count"] for row in rows})
        return counts

    async def get_job_details(self, job_id: object, *, tenant_id: object) -> list[JobDetail]:
        """Return the steps recorded for one job, oldest first."""
        key = _key(job_id, tenant_id)
        rows = await self._execute("list_details", key)
        if not rows:
            await self.get_job(key["job_id"], tenant_id=key["tenant"])  # not found vs no details
        keys, tenant = self._db.keys, key["tenant"]
        for row in rows:
            row["result"] = open_value(keys, row["result"], tenant=tenant, column=Column.DETAIL)
        return [JobDetail.model_validate(row) for row in rows]

    async def update_progress(self, tenant_id: str, job_id: UUID, progress: int, message: str | None) -> None:
        """Persist a job's progress."""
        params = {"tenant": tenant_id, "job_id": job_id, "progress": progress, "message": message}
        await self._execute("update_progress", params)

    async def add_detail(
        self,
        tenant_id: str,
        job_id: UUID,
        *,
        step_name: str,
        status: JobStatus,
        result: Any,
        metadata: dict[str, Any] | None,
        retry_count: int,
    ) -> UUID:
        """Write one ``job_details`` row and return its id."""
        detail_id = uuid4()
        try:
            text = _dumps(result)
            keys = self._db.keys
            if keys is not None and result is not None:
                text = seal(keys, text, tenant=tenant_id, column=Column.DETAIL)
            result_json = None if result is None else Jsonb(result, dumps=lambda _: text)
        except TypeError as exc:
            raise ValidationError(f"detail result is not JSON-serializable: {exc}") from None
        await self._execute(
            "insert_detail",
            {
                "tenant": tenant_id,
                "detail_id": detail_id,
                "job_id": job_id,
                "step_name": step_name,
                "status": status,
                "result": result_json,
                "retry_count": retry_count,
                "metadata": Jsonb(metadata or {}),
            },
        )
        return detail_id

    async def cancel(self, job_id: object, *, tenant_id: object) -> CancelOutcome | None:
        """Cancel a live job; None if it had already finished (JobNotFoundError if absent)."""
        key = _key(job_id, tenant_id)
        rows = await self._execute("cancel_job", key)
        if rows:
            row = rows[0]
            return CancelOutcome(
                previous_status=JobStatus(row["previous_status"]),
                status=JobStatus(row["status"]),
                runner_type=RunnerType(row["runner_type"]),
                external_id=row["external_id"],
            )
        await self.get_job(key["job_id"], tenant_id=key["tenant"])  # raises if not this tenant's
        return None

    async def hand_over(self, request: JobRequest, reason: str) -> RunnerType:
        """Queue a Temporal row on PostgreSQL unless a workflow claimed it; return the owner."""
        params = {"tenant": request.tenant_id, "job_id": request.job_id, "reason": reason[:500]}
        moved = await self._execute("hand_over_to_postgres", params)
        return RunnerType.POSTGRES if moved else RunnerType.TEMPORAL

    async def withdraw_unstarted(self, request: JobRequest) -> bool:
        """Delete a Temporal row whose workflow was refused; False if a run claimed it after all."""
        return bool(
            await self._execute("withdraw_unstarted_job", {"tenant": request.tenant_id, "job_id": request.job_id})
        )

    async def requeue(self, job_id: object, *, tenant_id: object) -> UUID:
        """Queue a failed or cancelled job again on PostgreSQL with fresh attempts (JobStateError otherwise)."""
        key = _key(job_id, tenant_id)
        if not await self._execute("retry_job", key):
            info = await self.get_job(key["job_id"], tenant_id=key["tenant"])
            raise JobStateError(f"job {info.job_id} is {info.status}; only failed or cancelled jobs can be retried")
        job: UUID = key["job_id"]
        return job

    async def retire_postgres_schedule(self, tenant_id: str, name: str, singleton_key: str | None) -> None:
        """Remove the PostgreSQL twin of a recurring job now registered on Temporal."""
        params = {"tenant": tenant_id, "type": name, "singleton_key": singleton_key or ""}
        await self._execute("retire_postgres_schedule", params)

    async def claim_pending(self, relay: str, *, lease: timedelta, limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` committed outbox rows to ``relay`` (oldest first)."""
        rows = await self._execute("claim_pending", {"relay": relay, "lease": lease, "limit": limit})
        return [self._opened(row, Column.DATA) for row in rows]

    async def mark_started(self, tenant_id: str, job_id: UUID) -> None:
        """An outbox row's workflow started: the row is queued on Temporal now."""
        await self._execute("mark_started", {"tenant": tenant_id, "job_id": job_id})

    async def release_pending(self, tenant_id: str, job_id: UUID, relay: str) -> None:
        """Give an outbox row back so a later round tries to start it again."""
        await self._execute("release_pending", {"tenant": tenant_id, "job_id": job_id, "relay": relay})

    async def live_postgres_schedules(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Recurring jobs that live on PostgreSQL: (tenant, type, singleton_key, spec, data, priority, user_id)."""
        rows = await self._execute("live_postgres_schedules", {"limit": limit})
        return [self._opened(row, Column.DATA) for row in rows]

    async def retire_temporal_schedule(self, tenant_id: str, name: str, singleton_key: str | None) -> None:
        """Deactivate the Temporal twin of a recurring job now registered on PostgreSQL (its runs then skip)."""
        params = {"tenant": tenant_id, "type": name, "singleton_key": singleton_key or ""}
        await self._execute("retire_temporal_schedule", params)

    async def prune(self, older_than: timedelta, *, batch: int = 1_000, max_batches: int = 1_000) -> int:
        """Delete finished jobs (and their details) older than ``older_than``, in batches; return how many."""
        total = 0
        for _ in range(max_batches):  # bounded: at most batch * max_batches rows per call
            deleted = await self._db.execute("prune_finished", {"retention": older_than, "limit": batch})
            total += deleted
            if deleted < batch:
                break
        return total


class StoreReporter:
    """The :class:`~algajobs.context.JobReporter` that writes straight to the store."""

    def __init__(self, store: JobStore, tenant_id: str, job_id: UUID, attempt: int) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._job_id = job_id
        self._attempt = attempt

    async def report_progress(self, progress: int, message: str | None) -> None:
        """Persist progress on the job row."""
        await self._store.update_progress(self._tenant_id, self._job_id, progress, message)

    async def run_once(self, step: str, fn: StepFunction) -> Any:
        """Run a once-step of this job (see :mod:`algajobs.once`)."""
        return await run_once(
            self._store.db,
            tenant_id=self._tenant_id,
            job_id=self._job_id,
            step=step,
            retry_count=self._attempt - 1,
            fn=fn,
        )

    async def add_detail(self, step_name: str, status: JobStatus, result: Any, metadata: dict[str, Any] | None) -> UUID:
        """Write a details row, tagged with the current attempt."""
        return await self._store.add_detail(
            self._tenant_id,
            self._job_id,
            step_name=step_name,
            status=status,
            result=result,
            metadata=metadata,
            retry_count=self._attempt - 1,
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _key(job_id: object, tenant_id: object) -> dict[str, Any]:
    return {"tenant": validation.tenant_id(tenant_id), "job_id": validation.job_id(job_id)}


def _status(value: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(value)
    except (ValueError, TypeError):
        raise ValidationError(f"unknown status {validation.preview(value)}; one of {', '.join(JobStatus)}") from None
