"""Enqueue in an SQLAlchemy AsyncSession's transaction (``postgresql+psycopg``): rolled back or committed with it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from algajobs import JobContext, JobNotFoundError, JobRegistry, JobStatus, PostgresRunner, Settings, ValidationError
from algajobs.sqlalchemy import psycopg_connection
from tests.helpers import DSN


@pytest.fixture
def ran(registry: JobRegistry) -> list[int]:
    """An ``invoice`` handler; each run appends its number."""
    runs: list[int] = []

    @registry.handler("invoice")
    async def invoice(ctx: JobContext, data: dict[str, int]) -> dict[str, int]:
        runs.append(data["n"])
        return {"invoice": data["n"]}

    return runs


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    """An SQLAlchemy engine on the test database through the async psycopg driver."""
    engine = create_async_engine(make_url(DSN).set(drivername="postgresql+psycopg"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[str]:
    """The application's own table, written in the same transactions as the jobs."""
    name = f"invoices_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {name} (n int)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {name}"))


async def test_rollback_leaves_nothing_and_commit_runs_once(
    settings: Settings, registry: JobRegistry, ran: list[int], engine: AsyncEngine, table: str
) -> None:
    """A job scheduled in a session is discarded by its rollback and run exactly once after its commit."""
    sessions = async_sessionmaker(engine)
    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        async with sessions() as session:
            await session.execute(text(f"INSERT INTO {table} VALUES (1)"))
            conn = await psycopg_connection(session)
            lost = await runner.schedule_job("invoice", {"n": 1}, tenant_id="t1", connection=conn)
            await session.rollback()
        async with sessions() as session, session.begin():
            await session.execute(text(f"INSERT INTO {table} VALUES (2)"))
            conn = await psycopg_connection(session)
            kept = await runner.schedule_job("invoice", {"n": 2}, tenant_id="t1", connection=conn)

        assert await runner.wait_for_result(kept.job_id, tenant_id="t1", timeout=30) == {"invoice": 2}
        assert ran == [2]
        assert [job.job_id for job in await runner.list_jobs(tenant_id="t1")] == [kept.job_id]
        with pytest.raises(JobNotFoundError):
            await runner.get_job_status(lost.job_id, tenant_id="t1")
    async with engine.connect() as check:
        assert (await check.execute(text(f"SELECT n FROM {table}"))).scalars().all() == [2]


async def test_a_bare_async_connection_joins_the_transaction_it_commits(
    settings: Settings, registry: JobRegistry, ran: list[int], engine: AsyncEngine
) -> None:
    """An AsyncConnection not yet in a transaction is begun, so its commit() commits a batch scheduled on it."""
    async with PostgresRunner(settings, registry) as runner:
        async with engine.connect() as conn:
            jobs = await runner.schedule_jobs(
                "invoice", [{"n": 1}, {"n": 2}], tenant_id="t1", connection=await psycopg_connection(conn)
            )
            assert conn.in_transaction()
            await conn.commit()
        counts = await runner.count_jobs_by_status(tenant_id="t1")
        assert counts[JobStatus.QUEUED] == len(jobs) == 2


async def test_other_objects_and_drivers_are_refused(engine: AsyncEngine) -> None:
    """Non-SQLAlchemy objects, sync sessions, AUTOCOMMIT and unstarted connections raise ValidationError."""
    for wrong in (object(), Session()):
        with pytest.raises(ValidationError, match="AsyncSession or AsyncConnection"):
            await psycopg_connection(wrong)  # type: ignore[arg-type]
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(ValidationError, match="AUTOCOMMIT"):
            await psycopg_connection(autocommit)
    unstarted = engine.connect()  # never awaited
    with pytest.raises(ValidationError, match="not usable"):
        await psycopg_connection(unstarted)


async def test_the_asyncpg_driver_is_refused() -> None:
    """An asyncpg session holds no psycopg connection to join: ValidationError naming both drivers."""
    pytest.importorskip("asyncpg")  # installed with the `bench` extra
    asyncpg_engine = create_async_engine(make_url(DSN).set(drivername="postgresql+asyncpg"))
    try:
        async with async_sessionmaker(asyncpg_engine)() as session:
            with pytest.raises(ValidationError, match=r"postgresql\+psycopg.*postgresql\+asyncpg"):
                await psycopg_connection(session)
    finally:
        await asyncpg_engine.dispose()
