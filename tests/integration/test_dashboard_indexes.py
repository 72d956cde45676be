"""The dashboard's list query walks an index on a 100k-row table, whichever filters apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from algajobs.sql import QUERIES

_NO_FILTER = {"tenant": None, "status": None, "type": None, "engine": None, "since": None, "until": None}


@pytest.fixture
async def big_table(settings: object, conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[Any]:
    """100 000 jobs over 20 tenants and a month, 1 % failed, analyzed."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, status, runner_type, created_at) "
        "SELECT 't' || (i % 20), gen_random_uuid(), 'type-' || (i % 7),"
        " (CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'completed' END)::job_status,"
        " (CASE WHEN i % 3 = 0 THEN 'postgres' ELSE 'temporal' END)::runner_type,"
        " timestamptz '2024-01-01' + i * interval '26 seconds' "
        "FROM generate_series(1, 100000) AS i"
    )
    await conn.execute("ANALYZE jobs")
    return conn


async def _plan(conn: psycopg.AsyncConnection[Any], **params: Any) -> str:
    query = sql.SQL("EXPLAIN ") + sql.SQL(QUERIES["dashboard_list_jobs"])
    values = _NO_FILTER | {"after_at": None, "after_id": None, "limit": 51} | params
    cur = await conn.execute(query, values)
    return "\n".join(row[0] for row in await cur.fetchall())


_CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "jobs_created_keyset_idx"),
    ({"tenant": "t7"}, "jobs_tenant_keyset_idx"),
    ({"status": "failed"}, "jobs_failed_keyset_idx"),
    ({"tenant": "t7", "type": "type-3", "engine": "postgres"}, "jobs_tenant_keyset_idx"),
    ({"since": datetime(2024, 1, 10, tzinfo=UTC), "until": datetime(2024, 1, 12, tzinfo=UTC)}, "keyset_idx"),
]


async def test_list_query_uses_a_keyset_index(big_table: psycopg.AsyncConnection[Any]) -> None:
    """Each filter combination, and a page deep in the list, walks an index in order: no seq scan, no sort."""
    cur = await big_table.execute(
        "SELECT created_at, job_id FROM jobs ORDER BY created_at DESC, job_id DESC OFFSET 90000 LIMIT 1"
    )
    deep = await cur.fetchone()
    assert deep is not None
    cases = [*_CASES, ({"after_at": deep[0], "after_id": deep[1]}, "jobs_created_keyset_idx")]
    for filters, index in cases:
        plan = await _plan(big_table, **filters)
        assert index in plan, (filters, plan)
        assert "Seq Scan" not in plan and "Sort" not in plan, (filters, plan)
    assert "Index Cond" in plan, plan  # the deep page starts at its cursor instead of skipping rows
