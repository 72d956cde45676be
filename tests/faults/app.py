"""Handlers run by worker subprocesses in fault tests.

Each run records its start in ``effect_starts`` and, after its work, its
effect in ``effects`` (unique per job), so a test can count exactly how
often a job's side effect happened.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg

from algajobs import JobContext, JobRegistry

registry = JobRegistry()
SETUP = """
CREATE TABLE IF NOT EXISTS effect_starts (job_id uuid, attempt int, at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS effects (job_id uuid PRIMARY KEY, tick timestamptz);
"""


async def _record(sql: str, params: list[Any]) -> None:
    schema = os.environ["JOB_SCHEMA"]
    conn = await psycopg.AsyncConnection.connect(
        os.environ["DATABASE_URL"], autocommit=True, options=f"-c search_path={schema}"
    )
    async with conn:
        await conn.execute(sql, params)


@registry.handler("effect")
async def effect(ctx: JobContext, data: dict[str, Any]) -> str:
    """Record the start, work for data['sleep'] seconds, record the effect once."""
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])
    await asyncio.sleep(float(data.get("sleep", 0)))
    await _record("INSERT INTO effects (job_id) VALUES (%s)", [ctx.job_id])
    return "done"


@registry.handler("effect-idempotent")
async def effect_idempotent(ctx: JobContext, data: dict[str, Any]) -> str:
    """Like ``effect``, written as a handler must be under at-least-once delivery: a rerun is a no-op."""
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])
    await _record("INSERT INTO effects (job_id) VALUES (%s) ON CONFLICT DO NOTHING", [ctx.job_id])
    return "done"
