"""The database schema: migrations, enums and the fetch query's index."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from algajobs import JobStatus, RunnerType, Settings, migrate
from algajobs.sql import QUERIES, migration_files
from tests.helpers import DSN


async def enum_values(conn: psycopg.AsyncConnection[Any], name: str) -> list[str]:
    """Labels of a Postgres enum in the test schema, in declared order."""
    cur = await conn.execute(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE t.typname = %s AND n.nspname = current_schema() ORDER BY e.enumsortorder",
        [name],
    )
    return [row[0] for row in await cur.fetchall()]


async def test_python_enums_equal_postgres_enums(conn: psycopg.AsyncConnection[Any]) -> None:
    """JobStatus and RunnerType match the SQL enums value for value."""
    assert await enum_values(conn, "job_status") == [s.value for s in JobStatus]
    assert await enum_values(conn, "runner_type") == [r.value for r in RunnerType]


async def test_fixed_monitoring_columns_exist(conn: psycopg.AsyncConnection[Any]) -> None:
    """Jobs and job_details carry every column DESIGN.md fixes."""
    cur = await conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    columns = {(r[0], r[1]) for r in await cur.fetchall()}
    jobs = "tenant job_id type metadata status created_at updated_at user_id runner_type external_id"
    details = "tenant detail_id job_id step_name status result processed_at retry_count metadata"
    assert {("jobs", c) for c in [*jobs.split(), "external_run_id"]} <= columns
    assert {("job_details", c) for c in details.split()} <= columns


async def test_concurrent_migrations_apply_once() -> None:
    """Many processes migrating at once serialize; each migration applies exactly once."""
    schema = f"aj_test_{uuid.uuid4().hex[:12]}"
    settings = Settings.load(database_url=DSN, schema_name=schema)
    try:
        results = await asyncio.gather(*(migrate(settings) for _ in range(5)))
        assert sorted(len(r) for r in results) == [0, 0, 0, 0, len(migration_files())]
        assert await migrate(settings) == []
    finally:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.usefixtures("settings")
async def test_claim_query_uses_the_claim_index(conn: psycopg.AsyncConnection[Any]) -> None:
    """With many finished rows and many tenants, claiming walks the partial claim index, never the table."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, completed_at) "
        "SELECT 't' || (g % 50), gen_random_uuid(), 'x', 'completed', 'postgres', now() "
        "FROM generate_series(1, 20000) g"
    )
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type) "
        "SELECT 't' || (g % 5), gen_random_uuid(), 'x', 'queued', 'postgres' FROM generate_series(1, 50) g"
    )
    await conn.execute("ANALYZE jobs")
    query = sql.SQL("EXPLAIN ") + sql.SQL(QUERIES["claim_jobs"])
    params = _claim_params()
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(query, params)
        plan = "\n".join(row[0] for row in await cur.fetchall())
    assert "jobs_claim_idx" in plan, plan
    assert "Seq Scan on jobs" not in plan, plan


@pytest.mark.usefixtures("settings")
async def test_a_backlog_of_types_the_worker_does_not_run_costs_the_claim_nothing(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    """20,000 queued jobs of a type no worker runs, due ahead of the rest: the claim never reads them."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, run_at) "
        "SELECT 't', gen_random_uuid(), 'not-deployed', 'queued', 'postgres', now() - interval '1 hour' "
        "FROM generate_series(1, 20000)"
    )
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type) "
        "SELECT 't', gen_random_uuid(), 'x', 'queued', 'postgres' FROM generate_series(1, 50)"
    )
    await conn.execute("ANALYZE jobs")
    plan = await _claim_plan(conn, _claim_params())

    assert _rows_read(plan) < 200, plan


@pytest.mark.usefixtures("settings")
async def test_a_paused_queues_backlog_costs_the_claim_nothing(conn: psycopg.AsyncConnection[Any]) -> None:
    """20,000 due jobs in a paused queue, of a type the worker runs: the claim reads none of them."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, queue, run_at) "
        "SELECT 't', gen_random_uuid(), 'frozen-work', 'queued', 'postgres', 'frozen', now() - interval '1 hour' "
        "FROM generate_series(1, 20000)"
    )
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type) "
        "SELECT 't', gen_random_uuid(), 'x', 'queued', 'postgres' FROM generate_series(1, 50)"
    )
    await conn.execute("INSERT INTO paused_queues (queue) VALUES ('frozen')")
    await conn.execute("ANALYZE jobs")
    plan = await _claim_plan(conn, _claim_params(types=["frozen-work", "x"], type_queues=["frozen", "default"]))
    assert _rows_read(plan) < 200, plan


def _rows_read(node: dict[str, Any]) -> int:
    """Table rows a plan node and its children read (returned plus filtered out, times loops)."""
    own = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0) if "Relation Name" in node else 0
    return int(own * node.get("Actual Loops", 1)) + sum(_rows_read(c) for c in node.get("Plans", []))


@pytest.mark.usefixtures("settings")
async def test_a_claim_on_a_table_without_statistics_reads_only_what_it_claims(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    """15,000 jobs just inserted, never analyzed (a new deployment's first burst): the claim still uses keys."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type) "
        "SELECT 't', gen_random_uuid(), 'x', 'queued', 'postgres' FROM generate_series(1, 15000)"
    )
    plan = await _claim_plan(conn, _claim_params(limit=100))
    assert _rows_read(plan) < 1_000, plan


def _claim_params(
    *, limit: int = 10, types: list[str] | None = None, type_queues: list[str] | None = None
) -> dict[str, Any]:
    """Parameters of ``claim_jobs`` for one worker with no caps, serving ``types`` (default: ``x``)."""
    return {
        "limit": limit,
        "tenants": limit,
        "after": "",
        "worker_id": "w",
        "lease": "30 seconds",
        "types": types or ["x"],
        "type_queues": type_queues or ["default"] * len(types or ["x"]),
        "capped_types": [],
        "type_room": [],
        "capped_queues": [],
        "queue_room": [],
        "full_tenants": [],
        "tenant_room": [],
        "tenant_cap": None,
    }


async def _claim_plan(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> dict[str, Any]:
    """``EXPLAIN (ANALYZE)`` of one claim, rolled back: the plan's root node."""
    query = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + sql.SQL(QUERIES["claim_jobs"])
    async with conn.transaction(force_rollback=True):
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    plan: dict[str, Any] = row[0][0]["Plan"]
    return plan
