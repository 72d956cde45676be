"""Enqueue in the caller's transaction, on both engines and in failover; waiting for results."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from algajobs import (
    FailoverRunner,
    JobCancelledError,
    JobContext,
    JobFailedError,
    JobRegistry,
    JobStatus,
    JobTimeoutError,
    PostgresRunner,
    RetryPolicy,
    Runner,
    RunnerType,
    Settings,
    TemporalRunner,
    ValidationError,
)
from algajobs.testing import test_server_path
from tests.faults.temporal_tools import free_port
from tests.helpers import eventually

Conn = psycopg.AsyncConnection[Any]


@pytest.fixture
def ran(registry: JobRegistry) -> list[Any]:
    """Handlers for these tests; each run is appended."""
    runs: list[Any] = []

    @registry.handler("invoice")
    async def invoice(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
        runs.append(data["n"])
        return {"invoice": data["n"]}

    @registry.handler("breaks", retry=RetryPolicy(max_attempts=1))
    async def breaks(ctx: JobContext, data: Any) -> None:
        raise RuntimeError("out of paper")

    @registry.handler("waits")
    async def waits(ctx: JobContext, data: Any) -> None:
        await asyncio.sleep(60)

    return runs


@pytest.fixture
async def caller(settings: Settings) -> AsyncIterator[Conn]:
    """The application's own connection, with its own table, on the public schema path."""
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        table = f"invoices_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE TABLE {table} (n int)".encode())  # its own, dropped below
        await conn.commit()
        conn.table = table  # type: ignore[attr-defined]
        yield conn
        await conn.rollback()
        await conn.execute(f"DROP TABLE {table}".encode())
        await conn.commit()


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal test server."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        yield environment


async def create_invoice_and_job(runner: Runner, conn: Conn, n: int, *, commit: bool) -> uuid.UUID:
    """What a service does: its own write and the job, in one transaction."""
    async with conn.transaction(force_rollback=not commit):
        await conn.execute(f"INSERT INTO {conn.table} VALUES (%s)".encode(), [n])  # type: ignore[attr-defined]
        job = await runner.schedule_job("invoice", {"n": n}, tenant_id="t1", connection=conn)
    return job.job_id


async def assert_rolled_back_leaves_nothing(runner: Runner, conn: Conn, ran: list[Any]) -> uuid.UUID:
    """A rolled-back enqueue leaves no row; a committed one runs once with its result awaited."""
    lost = await create_invoice_and_job(runner, conn, 1, commit=False)
    kept = await create_invoice_and_job(runner, conn, 2, commit=True)
    assert await runner.wait_for_result(kept, tenant_id="t1", timeout=30) == {"invoice": 2}
    assert ran == [2]
    assert [j.job_id for j in await runner.list_jobs(tenant_id="t1")] == [kept]
    with pytest.raises(Exception, match="not found"):
        await runner.get_job_status(lost, tenant_id="t1")
    # The caller's transaction is its own again: its search path is untouched.
    cur = await conn.execute("SHOW search_path")
    assert (await cur.fetchone())[0] == '"$user", public'  # type: ignore[index]
    await conn.rollback()
    return lost


async def test_postgres_rollback_leaves_nothing_and_commit_runs_once(
    settings: Settings, registry: JobRegistry, ran: list[Any], caller: Conn
) -> None:
    """PostgreSQL engine: the job is a queued row of the caller's transaction."""
    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        await assert_rolled_back_leaves_nothing(runner, caller, ran)


async def test_temporal_outbox_starts_the_workflow_after_commit(
    settings: Settings, registry: JobRegistry, ran: list[Any], caller: Conn, env: WorkflowEnvironment
) -> None:
    """Temporal engine: an outbox row, started by the relay after commit; a rollback starts nothing."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with TemporalRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        lost = await assert_rolled_back_leaves_nothing(runner, caller, ran)
        (job,) = await runner.list_jobs(tenant_id="t1")
        assert (job.runner_type, job.external_id) == (RunnerType.TEMPORAL, f"alga-job-{job.job_id}")
        await env.client.get_workflow_handle(job.external_id).describe()
        with pytest.raises(RPCError, match="not found"):  # the rolled-back job never became a workflow
            await env.client.get_workflow_handle(f"alga-job-{lost}").describe()


async def test_failover_outbox_falls_back_to_postgres_when_temporal_is_down(
    settings: Settings, registry: JobRegistry, ran: list[Any], caller: Conn
) -> None:
    """Failover with Temporal unreachable: the relay queues committed outbox rows on PostgreSQL."""
    conf = settings.model_copy(
        update={
            "runner_type": RunnerType.TEMPORAL,
            "temporal_address": f"127.0.0.1:{free_port()}",
            "circuit_call_timeout": timedelta(seconds=0.3),
        }
    )
    async with FailoverRunner(conf, registry) as runner:
        await runner.start()
        await assert_rolled_back_leaves_nothing(runner, caller, ran)
        (job,) = await runner.list_jobs(tenant_id="t1")
        assert job.runner_type is RunnerType.POSTGRES


async def test_many_writers_and_relays_run_each_job_once(
    settings: Settings, registry: JobRegistry, ran: list[Any], env: WorkflowEnvironment
) -> None:
    """1,000 jobs enqueued in 100 transactions by 4 writers, with 3 relaying workers: each runs exactly once."""
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with contextlib.AsyncExitStack() as stack:
        relays = [await stack.enter_async_context(TemporalRunner(conf, registry, client=env.client)) for _ in range(3)]
        for relay in relays:
            await relay.start()

        async def writer(w: int) -> None:
            async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
                for t in range(25):
                    async with conn.transaction():
                        for j in range(10):
                            n = w * 1000 + t * 10 + j
                            await relays[0].schedule_job("invoice", {"n": n}, tenant_id="t1", connection=conn)

        await asyncio.gather(*(writer(w) for w in range(4)))
        await eventually(
            lambda: relays[0].count_jobs_by_status(tenant_id="t1"),
            lambda c: c[JobStatus.COMPLETED] == 1000,
            within=90,
            interval=0.2,
        )
    assert len(ran) == 1000 and len(set(ran)) == 1000


async def test_wait_for_result_raises_the_jobs_typed_failure(
    settings: Settings, registry: JobRegistry, ran: list[Any]
) -> None:
    """Failed, cancelled and unfinished jobs raise JobFailedError, JobCancelledError and JobTimeoutError."""
    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        failed = await runner.schedule_job("breaks", None, tenant_id="t1")
        with pytest.raises(JobFailedError, match="out of paper"):
            await runner.wait_for_result(failed.job_id, tenant_id="t1", timeout=30)
        waiting = await runner.schedule_job("waits", None, tenant_id="t1")
        with pytest.raises(JobTimeoutError):
            await runner.wait_for_result(waiting.job_id, tenant_id="t1", timeout=0.5)
        with pytest.raises(TimeoutError):  # it is one, for code that catches the builtin
            await runner.wait_for_result(waiting.job_id, tenant_id="t1", timeout=0.2)
        waiter = asyncio.create_task(runner.wait_for_result(waiting.job_id, tenant_id="t1", timeout=30))
        await eventually(
            lambda: runner.get_job_status(waiting.job_id, tenant_id="t1"), lambda i: i.status is JobStatus.PROCESSING
        )
        assert await runner.cancel_job(waiting.job_id, tenant_id="t1")
        with pytest.raises(JobCancelledError):
            await waiter


async def test_a_connection_without_a_transaction_is_refused(
    settings: Settings, registry: JobRegistry, ran: list[Any]
) -> None:
    """An autocommit connection outside a transaction cannot hold the job back: ValidationError, nothing written."""
    async with (
        PostgresRunner(settings, registry) as runner,
        await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn,
    ):
        with pytest.raises(ValidationError, match="open transaction"):
            await runner.schedule_job("invoice", {"n": 1}, tenant_id="t1", connection=conn)
        with pytest.raises(ValidationError, match="AsyncConnection"):
            await runner.schedule_job("invoice", {"n": 1}, tenant_id="t1", connection=object())
        assert await runner.list_jobs(tenant_id="t1") == []
