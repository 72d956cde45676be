"""Bad input is refused with a typed error and writes nothing; tenants never see each other."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from algajobs import (
    AlgaJobsError,
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidScheduleError,
    InvalidTenantError,
    JobNotFoundError,
    JobRegistry,
    JobStatus,
    PayloadTooLargeError,
    PayloadValidationError,
    PostgresRunner,
    UnknownJobError,
)
from tests.integration.jobs import register_all


@pytest.fixture
def handlers(registry: JobRegistry) -> list[Any]:
    """Register the test handlers."""
    seen: list[Any] = []
    register_all(registry, seen)
    return seen


async def row_count(conn: psycopg.AsyncConnection[Any]) -> int:
    """Rows in jobs plus schedules."""
    cur = await conn.execute("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM schedules)")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


BAD_CALLS: list[tuple[str, type[AlgaJobsError], dict[str, Any]]] = [
    ("unknown job name", UnknownJobError, {"name": "nope"}),
    ("payload fails model", PayloadValidationError, {"data": {"billing_cycle_id": 5}}),
    ("payload missing field", PayloadValidationError, {"data": {}}),
    ("payload too large", PayloadTooLargeError, {"data": {"billing_cycle_id": "x" * 300_000}}),
    ("malformed tenant", InvalidTenantError, {"tenant_id": "bad tenant!"}),
    ("empty tenant", InvalidTenantError, {"tenant_id": ""}),
    ("malformed job id", InvalidJobIdError, {"job_id": "not-a-uuid"}),
]


@pytest.mark.parametrize(("case", "error", "override"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
async def test_bad_schedule_job_writes_nothing(
    runner: PostgresRunner,
    handlers: list[Any],
    conn: psycopg.AsyncConnection[Any],
    case: str,
    error: type[AlgaJobsError],
    override: dict[str, Any],
) -> None:
    """Each bad input raises its own error type and leaves the tables empty."""
    call: dict[str, Any] = {"name": "invoice", "data": {"billing_cycle_id": "c"}, "tenant_id": "t1"}
    call.update(override)
    with pytest.raises(error):
        await runner.schedule_job(call.pop("name"), call.pop("data"), **call)
    assert await row_count(conn) == 0


async def test_naive_run_at_writes_nothing(
    runner: PostgresRunner, handlers: list[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """schedule_job_at refuses a datetime without timezone."""
    with pytest.raises(InvalidRunAtError):
        await runner.schedule_job_at("record", 1, datetime(2030, 1, 1), tenant_id="t1")
    assert await row_count(conn) == 0


@pytest.mark.parametrize("spec", ["every so often", "0 0 * *", "99 * * * *", "0 hours"])
async def test_invalid_recurrence_writes_nothing(
    runner: PostgresRunner, handlers: list[Any], conn: psycopg.AsyncConnection[Any], spec: str
) -> None:
    """schedule_recurring_job refuses a bad cron or interval."""
    with pytest.raises(InvalidScheduleError):
        await runner.schedule_recurring_job("record", 1, spec, tenant_id="t1")
    assert await row_count(conn) == 0


async def test_tenant_b_cannot_see_or_touch_tenant_a(runner: PostgresRunner, handlers: list[Any]) -> None:
    """Another tenant gets 'not found' on read, cancel and retry, and sees nothing in lists."""
    job = await runner.schedule_job("record", 1, tenant_id="tenant-a")
    with pytest.raises(JobNotFoundError):
        await runner.get_job_status(job.job_id, tenant_id="tenant-b")
    with pytest.raises(JobNotFoundError):
        await runner.get_job_details(job.job_id, tenant_id="tenant-b")
    with pytest.raises(JobNotFoundError):
        await runner.cancel_job(job.job_id, tenant_id="tenant-b")
    with pytest.raises(JobNotFoundError):
        await runner.retry_job(job.job_id, tenant_id="tenant-b")
    assert await runner.list_jobs(tenant_id="tenant-b") == []
    counts = await runner.count_jobs_by_status(tenant_id="tenant-b")
    assert sum(counts.values()) == 0
    info = await runner.get_job_status(job.job_id, tenant_id="tenant-a")
    assert info.status is JobStatus.QUEUED


async def test_unknown_job_id_is_not_found(runner: PostgresRunner) -> None:
    """A well-formed id that does not exist is JobNotFoundError."""
    with pytest.raises(JobNotFoundError):
        await runner.get_job_status(uuid4(), tenant_id="t1")
