"""Handlers run by worker subprocesses in fault tests.

Each run records its start in ``effect_starts`` and, after its work, its
effect in ``effects`` (unique per job), so a test can count exactly how
often a job's side effect happened.

Besides ``registry`` (every handler), smaller registries stand for other
releases and services on the same schema: ``old_registry`` is the release
before ``effect-new`` existed; ``service_a`` and ``service_b`` are two services
whose handlers record, in ``service_runs``, the ``SERVICE`` that ran them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg

from algajobs import JobContext, JobRegistry

registry = JobRegistry()
old_registry = JobRegistry()
"""The previous release: every handler of ``registry`` except ``effect-new``."""
service_a = JobRegistry()
"""Service A's handlers (``a1``, ``a2``), sharing the schema and the default queue with service B."""
service_b = JobRegistry()
"""Service B's handler (``b1``)."""
SETUP = """
CREATE TABLE IF NOT EXISTS effect_starts (job_id uuid, attempt int, at timestamptz DEFAULT now());
CREATE TABLE IF NOT EXISTS effects (job_id uuid PRIMARY KEY, tick timestamptz);
CREATE TABLE IF NOT EXISTS service_runs (job_id uuid, job_name text, service text);
"""


async def _record(sql: str, params: list[Any]) -> None:
    schema = os.environ["JOB_SCHEMA"]
    conn = await psycopg.AsyncConnection.connect(
        os.environ["DATABASE_URL"], autocommit=True, options=f"-c search_path={schema}"
    )
    async with conn:
        await conn.execute(sql, params)


@old_registry.handler("effect")
@registry.handler("effect-new")
@registry.handler("effect")
async def effect(ctx: JobContext, data: dict[str, Any]) -> str:
    """Record the start, work for data['sleep'] seconds, record the effect once."""
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])
    await asyncio.sleep(float(data.get("sleep", 0)))
    await _record("INSERT INTO effects (job_id) VALUES (%s)", [ctx.job_id])
    return "done"


@old_registry.handler("effect-idempotent")
@registry.handler("effect-idempotent")
async def effect_idempotent(ctx: JobContext, data: dict[str, Any]) -> str:
    """Like ``effect``, written as a handler must be under at-least-once delivery: a rerun is a no-op."""
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])
    await _record("INSERT INTO effects (job_id) VALUES (%s) ON CONFLICT DO NOTHING", [ctx.job_id])
    return "done"


@registry.handler("effect-once")
async def effect_once(ctx: JobContext, data: dict[str, Any]) -> str:
    """Record the start, apply the effect in a once-step, then work for data['sleep'] seconds.

    A run cut off during that work leaves the effect committed and the job
    unfinished: the next run must find the step done and not apply it again.
    """
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])

    async def apply(conn: psycopg.AsyncConnection[Any]) -> int:
        await conn.execute("INSERT INTO effects (job_id, tick) VALUES (%s, now())", [ctx.job_id])
        return ctx.attempt

    applied_by = await ctx.once("effect", apply)
    await asyncio.sleep(float(data.get("sleep", 0)))
    return f"applied by attempt {applied_by}"


@service_b.handler("b1")
@service_a.handler("a2")
@service_a.handler("a1")
@registry.handler("b1")
@registry.handler("a2")
@registry.handler("a1")
async def served(ctx: JobContext, data: dict[str, Any]) -> str:
    """Record the start, which ``SERVICE`` ran the job, and the effect once."""
    await _record("INSERT INTO effect_starts (job_id, attempt) VALUES (%s, %s)", [ctx.job_id, ctx.attempt])
    await _record(
        "INSERT INTO service_runs (job_id, job_name, service) VALUES (%s, %s, %s)",
        [ctx.job_id, ctx.job_name, os.environ.get("SERVICE", "?")],
    )
    await _record("INSERT INTO effects (job_id) VALUES (%s)", [ctx.job_id])
    return "done"
