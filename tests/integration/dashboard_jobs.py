"""Jobs, rows and HTML probes shared by the dashboard tests."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from algajobs import JobContext, JobRegistry, JobStatus, RetryPolicy, Runner
from tests.helpers import eventually

ONCE = RetryPolicy(max_attempts=1)


def register_handlers(registry: JobRegistry, *, failures: dict[str, int]) -> None:
    """``ok`` completes; ``boom`` records a step then fails while ``failures['boom']`` > 0 (one fewer each run)."""

    @registry.handler("ok", retry=ONCE)
    async def ok(ctx: JobContext, data: Any) -> dict[str, Any]:
        await ctx.add_detail("work", status="completed", result={"echo": data})
        return {"done": True}

    @registry.handler("boom", retry=ONCE)
    async def boom(ctx: JobContext, data: Any) -> str:
        await ctx.report_progress(40, "charging the card")
        await ctx.add_detail("charge-card", status="processing", result={"amount": 42})
        if failures.get("boom", 0) > 0:
            failures["boom"] -= 1
            raise RuntimeError("card declined by the test gateway")
        return "charged"


async def run_all(runner: Runner, *, tenant: str | None = None) -> None:
    """Start the worker, wait until no job is queued or processing, then stop it."""
    await runner.start()

    async def live() -> int:
        tenants = [tenant] if tenant else ["acme", "globex"]
        total = 0
        for name in tenants:
            counts = await runner.count_jobs_by_status(tenant_id=name)
            total += counts[JobStatus.QUEUED] + counts[JobStatus.PROCESSING]
        return total

    await eventually(live, lambda n: n == 0, within=20)
    await runner.stop()


async def insert_row(
    conn: psycopg.AsyncConnection[Any],
    *,
    tenant: str,
    type_: str = "imported",
    status: str = "completed",
    engine: str = "temporal",
    created_at: datetime | None = None,
    external_id: str | None = None,
    external_run_id: str | None = None,
    error: str | None = None,
    queue: str = "default",
) -> uuid.UUID:
    """Write a jobs row directly (e.g. one a Temporal worker finished), returning its id."""
    job_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, created_at, external_id, external_run_id,"
        " error, queue) VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s, %s)",
        (tenant, job_id, type_, status, engine, created_at, external_id, external_run_id, error, queue),
    )
    return job_id


async def insert_worker(
    conn: psycopg.AsyncConnection[Any],
    *,
    host: str,
    pid: int,
    queues: list[str],
    types: list[str],
    engines: tuple[str, ...] = ("postgres",),
    silent_for: timedelta = timedelta(0),
) -> None:
    """Write a ``workers`` row as a worker process announces itself, last renewed ``silent_for`` ago."""
    await conn.execute(
        "INSERT INTO workers (worker_id, host, pid, engines, queues, types, started_at, heartbeat_at)"
        " VALUES (%s, %s, %s, %s::runner_type[], %s, %s, now() - %s - interval '1 minute', now() - %s)",
        (f"{host}:{pid}", host, pid, list(engines), queues, types, silent_for, silent_for),
    )


def cell(html: str, status: str, engine: str) -> int:
    """The overview's count for (status, engine) (engine ``total`` for the row total)."""
    match = re.search(rf'data-status="{status}" data-engine="{engine}">\s*(\d+)\s*<', html)
    assert match, f"no count cell for {status}/{engine}"
    return int(match.group(1))


def listed_ids(html: str) -> list[str]:
    """The job ids of the list page's rows, top to bottom."""
    return re.findall(r'class="job-row" data-job-id="([0-9a-f-]{36})"', html)


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)
