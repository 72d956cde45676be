"""``ctx.once``: a step's database effects commit once per job, on both engines alike.

The kit runs each test on Temporal (time-skipping server) and on PostgreSQL.
Crash windows (a worker SIGKILLed after the step) are in ``tests/faults``;
here a later failure of the same run forces the retry that must not repeat it.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from algajobs import JobContext, JobFailedError, JobRegistry, RetryPolicy, Settings
from algajobs.db import Database
from algajobs.errors import ValidationError
from algajobs.once import run_once
from algajobs.testing import JobsKit
from tests.helpers import DSN

FAST_RETRY = RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=10))
CALLS: dict[str, int] = {}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


async def charge(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Charge ``data['order']`` once; fail afterwards on attempt 1 if ``fail_after``."""

    async def apply(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        _count("charge")
        await conn.execute("INSERT INTO charges (order_id, job_id) VALUES (%s, %s)", [data["order"], ctx.job_id])
        return {"charged": data["order"], "attempt": ctx.attempt}

    charged: dict[str, Any] = await ctx.once("charge", apply)
    if data.get("fail_after") and ctx.attempt == 1:
        raise RuntimeError("the mail server refused the receipt")
    return charged


async def charge_then_raise(ctx: JobContext, data: dict[str, Any]) -> None:
    """A step that writes, then raises: nothing of it may stay."""

    async def apply(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("INSERT INTO charges (order_id, job_id) VALUES (%s, %s)", [data["order"], ctx.job_id])
        raise LookupError("card declined")

    await ctx.once("charge", apply)


async def misuse(ctx: JobContext, data: dict[str, Any]) -> list[str]:
    """Bad step names and an unstorable result; returns the errors seen, then a step with no result."""

    async def nan(conn: psycopg.AsyncConnection[Any]) -> float:
        await conn.execute("INSERT INTO charges (order_id, job_id) VALUES ('nan', %s)", [ctx.job_id])
        return math.nan

    async def nothing(conn: psycopg.AsyncConnection[Any]) -> None:
        return None

    def not_async(conn: psycopg.AsyncConnection[Any]) -> None:
        return None

    seen = []
    for step, fn in (("", nothing), ("\x00", nothing), ("nan", nan), ("sync", not_async), ("none", None)):
        try:
            await ctx.once(step, fn)  # type: ignore[arg-type]  # hostile input on purpose
        except ValidationError as exc:
            seen.append(type(exc).__name__)
    seen.append(repr(await ctx.once("no result", nothing)))
    return seen


def charge_sync(ctx: JobContext, data: dict[str, Any]) -> str:
    """A plain ``def`` handler's charge, failing after it on attempt 1."""

    async def apply(conn: psycopg.AsyncConnection[Any]) -> str:
        _count("charge-sync")
        await conn.execute("INSERT INTO charges (order_id, job_id) VALUES (%s, %s)", [data["order"], ctx.job_id])
        return f"charged {data['order']}"

    charged: str = ctx.once_sync("charge", apply)
    if ctx.attempt == 1:
        raise RuntimeError("failed after the charge")
    return charged


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    """Handlers that charge an order in a once-step, and fail or misuse it on request."""
    registry = JobRegistry()
    CALLS.clear()
    registry.handler("charge", retry=FAST_RETRY)(charge)
    registry.handler("charge-then-raise", retry=RetryPolicy(max_attempts=1))(charge_then_raise)
    registry.handler("misuse", retry=RetryPolicy(max_attempts=1))(misuse)
    registry.handler("charge-sync", retry=FAST_RETRY)(charge_sync)
    return registry


@pytest.fixture
async def charges(algajobs_jobs: JobsKit) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A ``charges`` table in the kit's schema, and a connection to read it."""
    schema = algajobs_jobs.runner.settings.schema_name
    async with await psycopg.AsyncConnection.connect(
        algajobs_jobs.runner.settings.database_url, autocommit=True, options=f"-c search_path={schema}"
    ) as conn:
        await conn.execute("CREATE TABLE charges (order_id text, job_id uuid)")
        yield conn


async def _rows(conn: psycopg.AsyncConnection[Any], query: str, params: list[Any] | None = None) -> list[Any]:
    cur = await conn.execute(query, params)  # type: ignore[arg-type]  # test queries are literals
    return await cur.fetchall()


async def test_a_step_is_not_applied_again_by_the_retry_after_a_later_failure(
    algajobs_jobs: JobsKit, charges: psycopg.AsyncConnection[Any]
) -> None:
    """Attempt 1 charges then fails; attempt 2 gets the stored result back and the order is charged once."""
    job = await algajobs_jobs.runner.schedule_job("charge", {"order": "o-1", "fail_after": True}, tenant_id="acme")
    assert await algajobs_jobs.result(job.job_id, tenant_id="acme") == {"charged": "o-1", "attempt": 1}
    assert (await algajobs_jobs.runner.get_job_status(job.job_id, tenant_id="acme")).attempts == 2
    assert CALLS == {"charge": 1}
    assert await _rows(charges, "SELECT order_id FROM charges") == [("o-1",)]
    details = await _rows(
        charges, "SELECT step_name, status::text, retry_count, once FROM job_details WHERE job_id = %s", [job.job_id]
    )
    assert details == [("charge", "completed", 0, True)]


async def test_steps_are_per_job(algajobs_jobs: JobsKit, charges: psycopg.AsyncConnection[Any]) -> None:
    """Two jobs with the same step name each apply it once."""
    assert await algajobs_jobs.run("charge", {"order": "o-1"}, tenant_id="acme") == {"charged": "o-1", "attempt": 1}
    assert await algajobs_jobs.run("charge", {"order": "o-2"}, tenant_id="acme") == {"charged": "o-2", "attempt": 1}
    assert sorted(await _rows(charges, "SELECT order_id FROM charges")) == [("o-1",), ("o-2",)]


async def test_a_step_that_raises_leaves_nothing_and_the_error_is_the_handlers(
    algajobs_jobs: JobsKit, charges: psycopg.AsyncConnection[Any]
) -> None:
    """The step's insert is rolled back, no step row is kept, and the job fails with the user's own error."""
    job = await algajobs_jobs.runner.schedule_job("charge-then-raise", {"order": "o-3"}, tenant_id="acme")
    with pytest.raises(JobFailedError, match="LookupError: card declined"):
        await algajobs_jobs.result(job.job_id, tenant_id="acme")
    assert await _rows(charges, "SELECT * FROM charges") == []
    assert await _rows(charges, "SELECT * FROM job_details WHERE job_id = %s", [job.job_id]) == []


async def test_bad_step_names_and_results_are_refused_and_roll_back(
    algajobs_jobs: JobsKit, charges: psycopg.AsyncConnection[Any]
) -> None:
    """Empty and NUL names, a NaN result, a plain function and None are ValidationErrors; nothing is kept."""
    result = await algajobs_jobs.run("misuse", {}, tenant_id="acme")
    assert result == [
        "ValidationError",
        "ValidationError",
        "PayloadValidationError",
        "ValidationError",
        "ValidationError",
        "None",
    ]
    assert await _rows(charges, "SELECT * FROM charges") == []


async def test_a_plain_def_handler_uses_once_sync(
    algajobs_jobs: JobsKit, charges: psycopg.AsyncConnection[Any]
) -> None:
    """once_sync from a worker thread: applied by attempt 1, not again by attempt 2."""
    assert await algajobs_jobs.run("charge-sync", {"order": "o-4"}, tenant_id="acme") == "charged o-4"
    assert CALLS == {"charge-sync": 1}
    assert await _rows(charges, "SELECT order_id FROM charges") == [("o-4",)]


# Beneath the context: the ledger itself, on one database.


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[tuple[Database, uuid.UUID]]:
    """A database on the test schema with one job row to attach steps to, and a ``charges`` table."""
    db = await Database.open(settings)
    job_id = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        await conn.execute(
            "INSERT INTO jobs (tenant, job_id, type, data, status, runner_type) "
            "VALUES ('acme', %s, 'charge', '{}', 'processing', 'postgres')",
            [job_id],
        )
        await conn.execute("CREATE TABLE charges (order_id text, job_id uuid)")
    try:
        yield db, job_id
    finally:
        await db.close()


async def test_two_runs_racing_for_one_step_apply_it_once(ledger: tuple[Database, uuid.UUID]) -> None:
    """A zombie run and its successor: the second waits for the first's commit and gets its result."""
    db, job_id = ledger
    order: list[str] = []

    def charger(who: str) -> Any:
        async def apply(conn: psycopg.AsyncConnection[Any]) -> str:
            order.append(f"{who} applies")
            await conn.execute("INSERT INTO charges VALUES ('o-5', %s)", [job_id])
            await asyncio.sleep(0.3)  # the other run arrives meanwhile
            return who

        return apply

    first = asyncio.create_task(
        run_once(db, tenant_id="acme", job_id=job_id, step="charge", retry_count=0, fn=charger("first"))
    )
    await asyncio.sleep(0.1)
    second = await run_once(db, tenant_id="acme", job_id=job_id, step="charge", retry_count=1, fn=charger("second"))
    assert (await first, second, order) == ("first", "first", ["first applies"])
    rows = await db.fetch("once_step_result", {"tenant": "acme", "job_id": job_id, "step_name": "charge"})
    assert len(rows) == 1


async def test_a_step_finds_public_tables_unqualified(ledger: tuple[Database, uuid.UUID]) -> None:
    """The step's search path is algajobs' schema, then public: an app's own table is found."""
    db, job_id = ledger
    table = f"aj_orders_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE TABLE public.{} (id int)").format(sql.Identifier(table)))
        try:

            async def apply(step_conn: psycopg.AsyncConnection[Any]) -> int:
                await step_conn.execute(sql.SQL("INSERT INTO {} VALUES (7)").format(sql.Identifier(table)))
                cur = await step_conn.execute("SELECT count(*) AS n FROM charges")
                row = await cur.fetchone()
                assert row is not None
                return int(row["n"])

            assert await run_once(db, tenant_id="acme", job_id=job_id, step="s", retry_count=0, fn=apply) == 0
            cur = await conn.execute(sql.SQL("SELECT id FROM public.{}").format(sql.Identifier(table)))
            assert await cur.fetchall() == [(7,)]
        finally:
            await conn.execute(sql.SQL("DROP TABLE public.{}").format(sql.Identifier(table)))


async def test_an_encrypted_step_result_is_sealed_at_rest_and_opened_for_the_rerun(settings: Settings) -> None:
    """With JOB_ENCRYPTION_KEYS the stored result is ciphertext; the second run reads the plain value."""
    key = base64.b64encode(os.urandom(32)).decode()
    db = await Database.open(settings.model_copy(update={"encryption_keys": SecretStr(f"k1:{key}")}))
    job_id = uuid.uuid4()
    try:
        async with db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO jobs (tenant, job_id, type, data, status, runner_type) "
                "VALUES ('acme', %s, 'charge', '{}', 'processing', 'postgres')",
                [job_id],
            )

        async def secret(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
            return {"card": "4242"}

        async def never(conn: psycopg.AsyncConnection[Any]) -> None:
            raise AssertionError("the step was already committed")

        first = await run_once(db, tenant_id="acme", job_id=job_id, step="s", retry_count=0, fn=secret)
        again = await run_once(db, tenant_id="acme", job_id=job_id, step="s", retry_count=1, fn=never)
        assert first == again == {"card": "4242"}
        (row,) = await db.fetch("once_step_result", {"tenant": "acme", "job_id": job_id, "step_name": "s"})
        assert "4242" not in str(row["result"])
    finally:
        await db.close()


async def test_the_users_own_sql_error_propagates_and_is_not_retried(ledger: tuple[Database, uuid.UUID]) -> None:
    """A statement timeout inside fn is the user's error: raised as is, fn called once, nothing kept."""
    db, job_id = ledger
    calls = 0

    async def slow(conn: psycopg.AsyncConnection[Any]) -> None:
        nonlocal calls
        calls += 1
        await conn.execute("INSERT INTO charges VALUES ('o-6', %s)", [job_id])
        await conn.execute("SET LOCAL statement_timeout = '50ms'")
        await conn.execute("SELECT pg_sleep(1)")

    with pytest.raises(psycopg.errors.QueryCanceled):
        await run_once(db, tenant_id="acme", job_id=job_id, step="slow", retry_count=0, fn=slow)
    assert calls == 1
    assert await db.fetch("once_step_result", {"tenant": "acme", "job_id": job_id, "step_name": "slow"}) == []


async def test_fn_that_ends_the_transaction_itself_is_refused(ledger: tuple[Database, uuid.UUID]) -> None:
    """A raw ROLLBACK inside fn would let the effects commit outside the step: refused, and nothing is recorded."""
    db, job_id = ledger

    async def rogue(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("ROLLBACK")

    with pytest.raises(ValidationError, match="must not commit or roll back"):
        await run_once(db, tenant_id="acme", job_id=job_id, step="rogue", retry_count=0, fn=rogue)
    assert await db.fetch("once_step_result", {"tenant": "acme", "job_id": job_id, "step_name": "rogue"}) == []


async def test_every_run_sees_the_result_as_stored(ledger: tuple[Database, uuid.UUID]) -> None:
    """The first run gets what later runs read back (jsonb's numbers and key order), not its own object."""
    db, job_id = ledger

    async def value(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
        return {"z": 1e16, "a": [1.5, "x"]}

    async def never(conn: psycopg.AsyncConnection[Any]) -> None:
        raise AssertionError("the step was already committed")

    first = await run_once(db, tenant_id="acme", job_id=job_id, step="v", retry_count=0, fn=value)
    again = await run_once(db, tenant_id="acme", job_id=job_id, step="v", retry_count=1, fn=never)
    assert first == again
    assert list(first) == list(again)


async def test_steps_do_not_nest_and_leave_no_session_settings_behind(ledger: tuple[Database, uuid.UUID]) -> None:
    """A step inside a step's fn is refused; a plain SET inside fn (search path too) does not outlive the step."""
    db, job_id = ledger

    async def inner(conn: psycopg.AsyncConnection[Any]) -> None:
        return None

    async def outer(conn: psycopg.AsyncConnection[Any]) -> str:
        await conn.execute("SET statement_timeout = '123ms'")
        await conn.execute("SET search_path = pg_catalog")  # the step's own record must still find its table
        with pytest.raises(ValidationError, match="cannot be nested"):
            await run_once(db, tenant_id="acme", job_id=job_id, step="inner", retry_count=0, fn=inner)
        return "outer"

    assert await run_once(db, tenant_id="acme", job_id=job_id, step="outer", retry_count=0, fn=outer) == "outer"
    for _ in range(db.pool.max_size):  # every pooled connection: none kept the timeout
        async with db.pool.connection() as conn:
            cur = await conn.execute("SHOW statement_timeout")
            assert await cur.fetchall() == [{"statement_timeout": "0"}]
