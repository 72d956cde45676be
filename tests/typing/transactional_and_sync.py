"""User-style code for transactional enqueue (psycopg, SQLAlchemy) and the sync facade; must type-check."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from algajobs import JobStatus, Runner, ScheduleResult, Settings, SyncRunner
from algajobs.sqlalchemy import psycopg_connection


async def with_psycopg(runner: Runner, conn: psycopg.AsyncConnection[Any]) -> ScheduleResult:
    async with conn.transaction():
        await conn.execute("INSERT INTO invoices (n) VALUES (1)")
        return await runner.schedule_job("invoice", {"n": 1}, tenant_id="acme", connection=conn)


async def with_sqlalchemy(runner: Runner, session: AsyncSession) -> Any:
    async with session.begin():
        await session.execute(text("INSERT INTO invoices (n) VALUES (1)"))
        job = await runner.schedule_job(
            "invoice", {"n": 1}, tenant_id="acme", connection=await psycopg_connection(session)
        )
    return await runner.wait_for_result(job.job_id, tenant_id="acme", timeout=30)


def from_a_view(settings: Settings) -> dict[JobStatus, int]:
    with SyncRunner(settings) as jobs:
        job: ScheduleResult = jobs.schedule_job("invoice", {"n": 1}, tenant_id="acme")
        jobs.wait_for_result(job.job_id, tenant_id="acme", timeout=30)
        return jobs.count_jobs_by_status(tenant_id="acme")
