"""The dashboard's list query walks an index on a 100k-row table, whichever filters apply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from algajobs.dashboard.reads import QUEUED_CAP
from algajobs.sql import QUERIES

_NO_FILTER = {
    "tenant": None,
    "status": None,
    "type": None,
    "queue": None,
    "engine": None,
    "since": None,
    "until": None,
}


@pytest.fixture
async def big_table(settings: object, conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[Any]:
    """100 000 jobs over 20 tenants and a month, 1 % failed, 90 % in the default queue and 0.1 % in a small one."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, queue, status, runner_type, created_at) "
        "SELECT 't' || (i % 20), gen_random_uuid(), 'type-' || (i % 7),"
        " (CASE WHEN i % 1000 = 0 THEN 'small' WHEN i % 10 = 0 THEN 'reports' ELSE 'default' END),"
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
    # The default queue holds most jobs: the keyset index plus a filter finds a page at once.
    ({"queue": "default"}, "jobs_created_keyset_idx"),
    # Other queues, however small (or empty), have a partial keyset index of their own.
    ({"queue": "reports"}, "jobs_queue_keyset_idx"),
    ({"queue": "small"}, "jobs_queue_keyset_idx"),
    ({"queue": "no-such-queue"}, "jobs_queue_keyset_idx"),
    ({"tenant": "t7", "queue": "default"}, "jobs_tenant_keyset_idx"),
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


async def test_a_queue_with_other_filters_reads_no_whole_table(big_table: psycopg.AsyncConnection[Any]) -> None:
    """A queue with a tenant, status or type reads the queue's index entries (then sorts them), never the table."""
    for filters in (
        {"queue": "small", "tenant": "t0"},
        {"queue": "small", "status": "failed"},
        {"queue": "reports", "tenant": "t7", "type": "type-3"},
        {"queue": "reports", "engine": "postgres", "status": "failed"},
    ):
        plan = await _plan(big_table, **filters)
        assert "jobs_queue_keyset_idx" in plan and "Seq Scan" not in plan, (filters, plan)


async def test_queues_page_reads_queued_jobs_through_the_waiting_index(
    settings: object, conn: psycopg.AsyncConnection[Any]
) -> None:
    """The queues page finds and counts queued jobs on jobs_waiting_idx alone; it never reads a backlog row."""
    await conn.execute(
        "INSERT INTO jobs (tenant, job_id, type, queue, status, runner_type) "
        "SELECT 't' || (i % 20), gen_random_uuid(), 'type-' || (i % 7),"
        " (CASE WHEN i % 100 = 0 THEN 'small' WHEN i % 3 = 0 THEN 'reports' ELSE 'default' END),"
        " (CASE WHEN i % 2 = 0 THEN 'queued' ELSE 'completed' END)::job_status, 'postgres' "
        "FROM generate_series(1, 100000) AS i"
    )
    await conn.execute("ANALYZE jobs")
    query = sql.SQL("EXPLAIN ") + sql.SQL(QUERIES["dashboard_queues"])
    cur = await conn.execute(query, {"alive": timedelta(seconds=20), "cap": QUEUED_CAP})
    plan = "\n".join(row[0] for row in await cur.fetchall())
    # Counting walks the index in its order up to the cap (or, for a queue not much longer than the cap,
    # may fetch its entries by bitmap): either way a long backlog costs no more than the cap.
    assert "jobs_waiting_idx" in plan and "Seq Scan on jobs" not in plan, plan
