"""The testing kit as a user meets it: only the documented fixtures, on both engines, in skipped time.

Nothing here reaches into algajobs internals: the registry fixture is
overridden as the docs say, and every test runs once per engine through the
plugin's default ``algajobs_engine`` parametrization.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from algajobs import JobContext, JobFailedError, JobRegistry, JobStatus, RetryPolicy
from algajobs.testing import JobsKit

HOUR = timedelta(hours=1)
WALL_LIMIT = 10.0


class Invoice(pydantic.BaseModel):
    billing_cycle_id: str


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    """The user's registry: a report, a flaky job with hour-long backoff, and one that always fails."""
    registry = JobRegistry()

    @registry.handler("generate-invoice")
    async def generate_invoice(ctx: JobContext, data: Invoice) -> dict[str, str]:
        await ctx.add_detail("render", status="completed", result={"pages": 3})
        return {"invoice": f"inv-{data.billing_cycle_id}"}

    @registry.handler(
        "sync-ledger",
        retry=RetryPolicy(max_attempts=3, initial_interval=HOUR, backoff_coefficient=2.0, maximum_interval=4 * HOUR),
    )
    async def sync_ledger(ctx: JobContext, data: dict[str, str]) -> int:
        if ctx.attempt < 3:
            raise ConnectionError(f"ledger unreachable (attempt {ctx.attempt})")
        return ctx.attempt

    @registry.handler("charge-card", retry=RetryPolicy(max_attempts=2, initial_interval=HOUR, maximum_interval=HOUR))
    def charge_card(ctx: JobContext, data: dict[str, str]) -> None:
        raise ValueError(f"card declined for {data['card']}")

    return registry


async def test_run_returns_the_handlers_result(algajobs_jobs: JobsKit) -> None:
    """``jobs.run`` schedules a job and returns what its handler returned."""
    result = await algajobs_jobs.run("generate-invoice", {"billing_cycle_id": "c1"}, tenant_id="acme")
    assert result == {"invoice": "inv-c1"}


async def test_a_job_six_hours_ahead_runs_in_seconds(algajobs_jobs: JobsKit) -> None:
    """A job scheduled 6 hours ahead completes on ``drain()`` in well under 10 s of wall time."""
    started = time.monotonic()
    job = await algajobs_jobs.runner.schedule_job_at(
        "generate-invoice", {"billing_cycle_id": "c6"}, datetime.now(UTC) + 6 * HOUR, tenant_id="acme"
    )
    await algajobs_jobs.drain()
    info = await algajobs_jobs.runner.get_job_status(job.job_id, tenant_id="acme")
    assert (info.status, info.result) == (JobStatus.COMPLETED, {"invoice": "inv-c6"})
    assert time.monotonic() - started < WALL_LIMIT


async def test_hour_long_retry_backoff_passes_in_seconds(algajobs_jobs: JobsKit) -> None:
    """A job failing twice with 1 h then 2 h backoff succeeds on its third attempt within 10 s."""
    started = time.monotonic()
    attempt = await algajobs_jobs.run("sync-ledger", {}, tenant_id="acme")
    assert attempt == 3
    assert time.monotonic() - started < WALL_LIMIT


async def test_a_failing_job_raises_job_failed_error(algajobs_jobs: JobsKit) -> None:
    """A job out of attempts surfaces as ``JobFailedError`` carrying the handler's error."""
    with pytest.raises(JobFailedError, match="card declined for 4242"):
        await algajobs_jobs.run("charge-card", {"card": "4242"}, tenant_id="acme")


async def test_advance_moves_the_clock_only_as_far_as_asked(algajobs_jobs: JobsKit) -> None:
    """Five of six hours later the job still waits; ``drain()`` then runs it."""
    job = await algajobs_jobs.runner.schedule_job_at(
        "generate-invoice", {"billing_cycle_id": "c5"}, datetime.now(UTC) + 6 * HOUR, tenant_id="acme"
    )
    await algajobs_jobs.advance(5 * HOUR)
    info = await algajobs_jobs.runner.get_job_status(job.job_id, tenant_id="acme")
    assert info.status is JobStatus.QUEUED
    await algajobs_jobs.drain()
    info = await algajobs_jobs.runner.get_job_status(job.job_id, tenant_id="acme")
    assert info.status is JobStatus.COMPLETED


async def test_drain_runs_every_due_job_and_leaves_failures_readable(algajobs_jobs: JobsKit) -> None:
    """``drain()`` finishes a mix of immediate, delayed, retried and failing jobs; failures are in the tables."""
    runner = algajobs_jobs.runner
    soon = await runner.schedule_job("generate-invoice", {"billing_cycle_id": "a"}, tenant_id="acme")
    later = await runner.schedule_job_at(
        "generate-invoice", {"billing_cycle_id": "b"}, datetime.now(UTC) + 30 * HOUR, tenant_id="acme"
    )
    flaky = await runner.schedule_job("sync-ledger", {}, tenant_id="acme")
    broken = await runner.schedule_job("charge-card", {"card": "1"}, tenant_id="acme")
    await algajobs_jobs.drain()
    statuses = [(await runner.get_job_status(j.job_id, tenant_id="acme")).status for j in (soon, later, flaky, broken)]
    assert statuses == [JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED]


async def test_delays_count_from_the_engines_clock_after_skipping(algajobs_jobs: JobsKit) -> None:
    """After a drain skipped 6 hours, a job due an hour after ``jobs.now()`` still waits half an hour on."""
    first = await algajobs_jobs.runner.schedule_job_at(
        "generate-invoice", {"billing_cycle_id": "d1"}, await algajobs_jobs.now() + 6 * HOUR, tenant_id="acme"
    )
    await algajobs_jobs.drain()
    second = await algajobs_jobs.runner.schedule_job_at(
        "generate-invoice", {"billing_cycle_id": "d2"}, await algajobs_jobs.now() + HOUR, tenant_id="acme"
    )
    await algajobs_jobs.advance(HOUR / 2)
    statuses = [(await algajobs_jobs.runner.get_job_status(j.job_id, tenant_id="acme")).status for j in (first, second)]
    assert statuses == [JobStatus.COMPLETED, JobStatus.QUEUED]
    assert await algajobs_jobs.result(second.job_id, tenant_id="acme") == {"invoice": "inv-d2"}


@pytest.mark.parametrize("algajobs_engine", ["postgres"])
async def test_one_test_can_narrow_to_one_engine(algajobs_jobs: JobsKit) -> None:
    """Parametrizing ``algajobs_engine`` directly runs a test on that engine alone."""
    assert algajobs_jobs.engine == "postgres"
    assert await algajobs_jobs.run("generate-invoice", {"billing_cycle_id": "p"}, tenant_id="acme")
