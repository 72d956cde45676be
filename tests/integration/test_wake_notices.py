"""Every statement that queues a PostgreSQL job wakes the workers at commit, and nothing else does.

A listening connection reads the notices on ``algajobs_<schema>`` as a worker
would: ``job:<job_id>:<tenant>`` for one job due now (an idle worker claims it
by key), '' for a batch or a fired tick due now, the epoch of a later due time.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from algajobs import PostgresRunner, Settings
from algajobs.fallback.schedules import fire_due
from algajobs.sql import QUERIES
from tests.helpers import DSN, noop_registry

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[PostgresRunner]:
    """A PostgreSQL runner with no worker: nothing claims, so every notice stays to be read."""
    registry = noop_registry()

    async with PostgresRunner(settings, registry) as opened:
        yield opened


@pytest.fixture
async def listener(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(DSN, autocommit=True)
    await conn.execute(f'LISTEN "algajobs_{settings.schema_name}"')
    yield conn
    await conn.close()


async def notices(listener: psycopg.AsyncConnection[Any], *, quiet: float = 0.3) -> list[str]:
    """Every notice received until none has come for ``quiet`` s (at most 100)."""
    received: list[str] = []
    async for notice in listener.notifies(timeout=quiet, stop_after=100):
        received.append(notice.payload)
    return received


async def test_a_job_due_now_wakes_the_workers_once_naming_itself(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any]
) -> None:
    job = await runner.schedule_job("noop", None, tenant_id="t1")
    assert await notices(listener) == [f"job:{job.job_id}:t1"]


async def test_a_delayed_job_sends_its_due_time(runner: PostgresRunner, listener: psycopg.AsyncConnection[Any]) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    await runner.schedule_job_at("noop", None, due, tenant_id="t1")
    assert [float(n) for n in await notices(listener)] == [due.timestamp()]


async def test_a_batch_wakes_the_workers_with_one_notice(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any]
) -> None:
    await runner.schedule_jobs("noop", [None] * 500, tenant_id="t1")
    assert await notices(listener) == [""]


async def test_an_insert_that_writes_nothing_wakes_nobody(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any]
) -> None:
    job_id = uuid.uuid4()
    await runner.schedule_job("noop", None, tenant_id="t1", job_id=job_id)
    assert await notices(listener) == [f"job:{job_id}:t1"]
    await runner.schedule_job("noop", None, tenant_id="t1", job_id=job_id)  # the same id: no row written
    assert await notices(listener) == []


async def test_rows_not_queued_on_postgres_wake_nobody(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any], settings: Settings
) -> None:
    """A Temporal job's row and an outbox row (pending) are not work for a PostgreSQL worker."""
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        for status, runner_type in (("queued", "temporal"), ("pending", "postgres")):
            await conn.execute(
                QUERIES["insert_job"],
                {
                    "tenant": "t1",
                    "job_id": uuid.uuid4(),
                    "type": "noop",
                    "status": status,
                    "runner_type": runner_type,
                    "user_id": None,
                    "data": "null",
                    "priority": 0,
                    "run_at": None,
                    "max_attempts": 1,
                    "singleton_key": None,
                    "metadata": "{}",
                    "external_id": None,
                    "queue": "default",
                },
            )
    assert await notices(listener) == []


async def test_a_notice_is_sent_only_when_the_transaction_commits(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any], settings: Settings
) -> None:
    async with await psycopg.AsyncConnection.connect(DSN) as conn:
        await conn.execute(f"SET search_path = {settings.schema_name}")
        job = await runner.schedule_job("noop", None, tenant_id="t1", connection=conn)
        assert await notices(listener) == []  # not yet committed
        await conn.commit()
    assert await notices(listener) == [f"job:{job.job_id}:t1"]


async def test_a_fired_recurring_tick_wakes_the_workers(
    runner: PostgresRunner, listener: psycopg.AsyncConnection[Any], settings: Settings
) -> None:
    await runner.schedule_recurring_job("noop", None, "1 hour", tenant_id="t1")
    assert await notices(listener) == []  # the schedule's own row is 'active', not queued
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        await conn.execute("UPDATE schedules SET next_run_at = now() - interval '1 second'")
    assert await fire_due(runner.store.db) == 1
    assert await notices(listener) == [""]
