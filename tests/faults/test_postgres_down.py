"""PostgreSQL down: every runner call fails within a bound with a typed algajobs error, never a raw driver error."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from algajobs import (
    AlgaJobsError,
    EngineUnavailableError,
    JobContext,
    JobRegistry,
    JobRunner,
    RunnerType,
    Settings,
    create_runner,
)
from tests.faults.pgcluster import PgCluster
from tests.faults.temporal_tools import free_port

DB_RETRY_DEADLINE = timedelta(seconds=2)
# A call may retry for the whole deadline, then wait out one last connect or pool
# timeout; 3 s more covers that on a loaded machine.
CALL_BOUND = DB_RETRY_DEADLINE.total_seconds() + 3.0

registry = JobRegistry()
MODES: dict[str, dict[str, Any]] = {
    "postgres": {"runner_type": "postgres"},
    "failover": {"runner_type": "temporal", "fallback_to_postgres": True, "circuit_call_timeout": 0.5},
}


@registry.handler("x")
async def x(ctx: JobContext, data: dict[str, Any]) -> None:
    """Do nothing: these tests never get as far as running a job."""


# Every public call, with the error it must raise. Scheduling calls that cannot
# reach PostgreSQL accepted nothing: EngineUnavailableError. The rest need only
# be typed.
CALLS: dict[str, tuple[Callable[[Any], Awaitable[object]], type[AlgaJobsError]]] = {
    "schedule_job": (lambda r: r.schedule_job("x", {}, tenant_id="t1"), EngineUnavailableError),
    "schedule_job_at": (
        lambda r: r.schedule_job_at("x", {}, datetime.now(UTC) + timedelta(hours=1), tenant_id="t1"),
        EngineUnavailableError,
    ),
    "schedule_recurring_job": (
        lambda r: r.schedule_recurring_job("x", {}, "1 hour", tenant_id="t1"),
        EngineUnavailableError,
    ),
    "schedule_jobs": (lambda r: r.schedule_jobs("x", [{}, {}, {}], tenant_id="t1"), EngineUnavailableError),
    "cancel_job": (lambda r: r.cancel_job(uuid.uuid4(), tenant_id="t1"), AlgaJobsError),
    "retry_job": (lambda r: r.retry_job(uuid.uuid4(), tenant_id="t1"), AlgaJobsError),
    "get_job_status": (lambda r: r.get_job_status(uuid.uuid4(), tenant_id="t1"), AlgaJobsError),
    "list_jobs": (lambda r: r.list_jobs(tenant_id="t1"), AlgaJobsError),
    "get_job_details": (lambda r: r.get_job_details(uuid.uuid4(), tenant_id="t1"), AlgaJobsError),
    "count_jobs_by_status": (lambda r: r.count_jobs_by_status(tenant_id="t1"), AlgaJobsError),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    """Which ``create_runner`` mode: PostgreSQL only, or Temporal (unreachable) with the PostgreSQL fallback."""
    name: str = request.param
    return name


@pytest.fixture
def down_settings(mode: str, own_settings: Settings) -> Settings:
    """Settings for ``mode`` on the test's own cluster, with a short database retry deadline."""
    temporal_address = f"127.0.0.1:{free_port()}"  # failover mode: nobody listens, connections are refused
    changes = {**MODES[mode], "temporal_address": temporal_address, "db_retry_deadline": 2}  # seconds, a number
    conf = Settings.load(**{**own_settings.model_dump(), **changes})
    assert conf.db_retry_deadline == DB_RETRY_DEADLINE  # Settings ignores unknown keys; make sure it took
    return conf


@pytest.fixture
async def down_runner(down_settings: Settings, own_postgres: PgCluster) -> AsyncIterator[JobRunner]:
    """An open runner whose PostgreSQL is then stopped in immediate mode (connections cut, no goodbye)."""
    async with create_runner(down_settings, registry) as runner:
        await asyncio.to_thread(own_postgres.stop, "immediate")
        yield runner


async def fails_within_bound(call: Awaitable[object], expected: type[AlgaJobsError]) -> None:
    """Await ``call``: it must raise ``expected`` (not a psycopg or pool error) within CALL_BOUND seconds."""
    started = time.perf_counter()
    with pytest.raises(expected):
        async with asyncio.timeout(2 * CALL_BOUND):  # a hang fails here, not at pytest's 120 s timeout
            await call
    elapsed = time.perf_counter() - started
    assert elapsed < CALL_BOUND, f"raised after {elapsed:.1f}s; bound {CALL_BOUND}s"


async def test_every_call_raises_a_typed_error_within_bound(down_runner: JobRunner) -> None:
    """With PostgreSQL stopped, each public runner method raises a typed algajobs error within the bound."""
    # All at once: each is timed on its own, and the suite waits one deadline, not ten.
    outcomes = await asyncio.gather(
        *(fails_within_bound(call(down_runner), expected) for call, expected in CALLS.values()),
        return_exceptions=True,
    )
    failures = {name: outcome for name, outcome in zip(CALLS, outcomes, strict=True) if outcome is not None}
    assert not failures, failures


async def test_health_reports_postgres_down_without_raising(down_runner: JobRunner) -> None:
    """With PostgreSQL stopped, is_healthy returns an unhealthy report naming PostgreSQL, within the bound."""
    started = time.perf_counter()
    report = await asyncio.wait_for(down_runner.is_healthy(), 2 * CALL_BOUND)
    elapsed = time.perf_counter() - started
    assert elapsed < CALL_BOUND, f"answered after {elapsed:.1f}s; bound {CALL_BOUND}s"
    assert not report.healthy
    assert [e.healthy for e in report.engines if e.engine is RunnerType.POSTGRES] == [False]


async def test_opening_a_runner_while_postgres_is_down_raises(down_settings: Settings, own_postgres: PgCluster) -> None:
    """Opening a runner while PostgreSQL is stopped raises EngineUnavailableError within the bound."""
    await asyncio.to_thread(own_postgres.stop, "immediate")

    async def open_runner() -> None:
        async with create_runner(down_settings, registry):
            pass

    await fails_within_bound(open_runner(), EngineUnavailableError)
