"""Hostile input on real runners: a typed ValidationError, and nothing written to PostgreSQL or started."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NoReturn

import psycopg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from algajobs import (
    FailoverRunner,
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidScheduleError,
    InvalidTenantError,
    JobRegistry,
    PayloadValidationError,
    PostgresRunner,
    Runner,
    RunnerType,
    Settings,
    TemporalRunner,
    UnknownJobError,
    ValidationError,
)
from algajobs.testing import test_server_path
from tests.integration.jobs import register_all

NAN, INF = float("nan"), float("inf")


@pytest.fixture
def handlers(registry: JobRegistry) -> list[Any]:
    """Register the shared test handlers (``record`` takes any JSON, ``invoice`` a model)."""
    seen: list[Any] = []
    register_all(registry, seen)
    return seen


async def assert_nothing_written(runner: Runner, conn: psycopg.AsyncConnection[Any], *tenants: str) -> None:
    """No job row for any tenant (as the API counts them) and no row at all in jobs or schedules."""
    for tenant in tenants or ("t1",):
        counts = await runner.count_jobs_by_status(tenant_id=tenant)
        assert sum(counts.values()) == 0, counts
    cur = await conn.execute("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM schedules)")
    row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0


def circular() -> dict[str, Any]:
    """A payload that contains itself."""
    value: dict[str, Any] = {}
    value["self"] = value
    return value


HOSTILE_CALLS: list[tuple[str, type[ValidationError], dict[str, Any]]] = [
    ("tenant with trailing newline", InvalidTenantError, {"tenant_id": "t1\n"}),
    ("tenant with NUL", InvalidTenantError, {"tenant_id": "t1\x00"}),
    ("tenant lone surrogate", InvalidTenantError, {"tenant_id": "t\ud800"}),
    ("user_id with NUL", ValidationError, {"user_id": "u\x00"}),
    ("user_id lone surrogate", ValidationError, {"user_id": "\ud800"}),
    ("singleton_key with NUL", ValidationError, {"singleton_key": "k\x00"}),
    ("singleton_key lone surrogate", ValidationError, {"singleton_key": "\udfff"}),
    ("job name with NUL", UnknownJobError, {"name": "record\x00"}),
    ("job name unhashable", UnknownJobError, {"name": ["record"]}),
    ("NUL in payload string", PayloadValidationError, {"data": {"a": "x\x00y"}}),
    ("NUL in payload key", PayloadValidationError, {"data": {"a\x00": 1}}),
    ("lone surrogate in payload", PayloadValidationError, {"data": ["\ud800"]}),
    ("lone surrogate in payload key", PayloadValidationError, {"data": {"\udfff": 1}}),
    ("NaN in payload", PayloadValidationError, {"data": {"a": NAN}}),
    ("+Inf in payload", PayloadValidationError, {"data": [INF]}),
    ("-Inf in payload", PayloadValidationError, {"data": {"a": {"b": -INF}}}),
    ("circular payload", PayloadValidationError, {"data": circular()}),
    ("unserialisable payload", PayloadValidationError, {"data": {"a": object()}}),
    ("NUL in a model field", PayloadValidationError, {"name": "invoice", "data": {"billing_cycle_id": "\x00"}}),
    ("priority Arabic-Indic string", ValidationError, {"priority": "\u0661\u0662"}),
    ("priority huge", ValidationError, {"priority": 10**30}),
    (
        "job id Arabic-Indic digits",
        InvalidJobIdError,
        {"job_id": "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668-1234-5678-1234-567812345678"},
    ),
    ("job id with a sign", InvalidJobIdError, {"job_id": "+2345678-1234-5678-1234-567812345678"}),
]
CALL_IDS = [c[0] for c in HOSTILE_CALLS]


def split(override: dict[str, Any]) -> tuple[str, Any, dict[str, Any]]:
    """A valid ``record`` call with ``override`` applied, as (name, data, keywords)."""
    call: dict[str, Any] = {"name": "record", "data": {"ok": 1}, "tenant_id": "t1"}
    call.update(override)
    return call.pop("name"), call.pop("data"), call


@pytest.mark.parametrize(("case", "error", "override"), HOSTILE_CALLS, ids=CALL_IDS)
async def test_hostile_schedule_job_writes_nothing(
    runner: PostgresRunner,
    handlers: list[Any],
    conn: psycopg.AsyncConnection[Any],
    case: str,
    error: type[ValidationError],
    override: dict[str, Any],
) -> None:
    """schedule_job raises the typed error and leaves the tables empty."""
    name, data, kwargs = split(override)
    with pytest.raises(error):
        await runner.schedule_job(name, data, **kwargs)
    await assert_nothing_written(runner, conn)


AT_CALLS = [c for c in HOSTILE_CALLS if "job_id" not in c[2]] + [
    (
        "run_at overflowing UTC",
        InvalidRunAtError,
        {"run_at": datetime.max.replace(tzinfo=timezone(-timedelta(hours=5)))},
    ),
    ("run_at as a string", InvalidRunAtError, {"run_at": "2030-01-01T00:00:00+00:00"}),
]


@pytest.mark.parametrize(("case", "error", "override"), AT_CALLS, ids=[c[0] for c in AT_CALLS])
async def test_hostile_schedule_job_at_writes_nothing(
    runner: PostgresRunner,
    handlers: list[Any],
    conn: psycopg.AsyncConnection[Any],
    case: str,
    error: type[ValidationError],
    override: dict[str, Any],
) -> None:
    """schedule_job_at raises the typed error and leaves the tables empty."""
    name, data, kwargs = split(override)
    run_at = kwargs.pop("run_at", datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(error):
        await runner.schedule_job_at(name, data, run_at, **kwargs)
    await assert_nothing_written(runner, conn)


HOSTILE_SPECS: list[tuple[str, str | timedelta]] = [
    ("cron on 31 February", "0 0 31 2 *"),
    ("cron on 31st of 30-day months", "0 0 31 4,6,9,11 *"),
    ("a million weeks", "1000000 weeks"),
    ("interval past timedelta's range", "99999999999999999999 seconds"),
    ("timedelta over ten years", timedelta(days=4000)),
    ("Arabic-Indic interval", "\u0661\u0665 minutes"),
    ("fullwidth interval", "\uff11\uff15 minutes"),
    ("NUL in cron", "0 0 * * *\x00"),
]
RECURRING_CALLS = [c for c in HOSTILE_CALLS if "job_id" not in c[2]] + [
    (case, InvalidScheduleError, {"interval": spec}) for case, spec in HOSTILE_SPECS
]


@pytest.mark.parametrize(("case", "error", "override"), RECURRING_CALLS, ids=[c[0] for c in RECURRING_CALLS])
async def test_hostile_schedule_recurring_job_writes_nothing(
    runner: PostgresRunner,
    handlers: list[Any],
    conn: psycopg.AsyncConnection[Any],
    case: str,
    error: type[ValidationError],
    override: dict[str, Any],
) -> None:
    """schedule_recurring_job raises the typed error and registers no schedule."""
    name, data, kwargs = split(override)
    interval = kwargs.pop("interval", "15 minutes")
    with pytest.raises(error):
        await runner.schedule_recurring_job(name, data, interval, **kwargs)
    await assert_nothing_written(runner, conn)


@pytest.mark.parametrize(
    "bad",
    [{"a": NAN}, {"a": "\x00"}, {"\ud800": 1}, circular(), [INF]],
    ids=["NaN", "NUL", "surrogate", "cycle", "Inf"],
)
async def test_one_hostile_payload_fails_the_whole_batch(
    runner: PostgresRunner, handlers: list[Any], conn: psycopg.AsyncConnection[Any], bad: Any
) -> None:
    """schedule_jobs validates every payload first: one bad payload and none of the batch is written."""
    with pytest.raises(PayloadValidationError):
        await runner.schedule_jobs("record", [{"ok": 1}, bad, {"ok": 2}], tenant_id="t1")
    await assert_nothing_written(runner, conn)


LISTINGS: list[tuple[str, dict[str, Any]]] = [
    ("limit as string", {"limit": "10"}),
    ("limit None", {"limit": None}),
    ("offset float", {"offset": 1.5}),
    ("limit bool", {"limit": True}),
    ("offset bool", {"offset": False}),
    ("offset past bigint", {"offset": 2**63}),
    ("limit huge", {"limit": 10**30}),
    ("job name filter with NUL", {"job_name": "record\x00"}),
    ("tenant with trailing newline", {"tenant_id": "t1\n"}),
]


@pytest.mark.parametrize(("case", "override"), LISTINGS, ids=[c[0] for c in LISTINGS])
async def test_hostile_paging_is_a_validation_error(
    runner: PostgresRunner, handlers: list[Any], case: str, override: dict[str, Any]
) -> None:
    """list_jobs refuses wrong types and ranges with ValidationError, not TypeError or a database error."""
    await runner.schedule_job("record", 1, tenant_id="t1")
    call: dict[str, Any] = {"tenant_id": "t1"}
    call.update(override)
    with pytest.raises(ValidationError):
        await runner.list_jobs(**call)
    assert len(await runner.list_jobs(tenant_id="t1", limit=1000, offset=0)) == 1


async def test_unusual_but_valid_payloads_round_trip_through_postgresql(
    runner: PostgresRunner, handlers: list[Any], conn: psycopg.AsyncConnection[Any]
) -> None:
    """Emoji, non-ASCII digits as text, literal backslash-u0000 and control characters other than NUL are kept."""
    payload = {
        "text": "héllo 😀 \u0661\u0662 \uff11",
        "literal": "\\u0000 and \\\\u0000",
        "k\\u0000": [1.5, 10**40],  # jsonb keeps numbers as numeric: exact decimals, so no float edge cases
        "controls": "tab\there\x01\x1f",
    }
    job = await runner.schedule_job("record", payload, tenant_id="t1", user_id="ünï", singleton_key="ключ")
    cur = await conn.execute("SELECT data::text FROM jobs WHERE job_id = %s", (job.job_id,))
    row = await cur.fetchone()
    assert row is not None
    assert json.loads(row[0]) == payload


@pytest.fixture
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal test server (nothing should ever reach it)."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        yield environment


@pytest.mark.parametrize("mode", [TemporalRunner, FailoverRunner], ids=["temporal", "failover"])
async def test_hostile_input_is_refused_before_temporal_too(
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    registry: JobRegistry,
    handlers: list[Any],
    conn: psycopg.AsyncConnection[Any],
    monkeypatch: pytest.MonkeyPatch,
    mode: type[Runner],
) -> None:
    """On Temporal and failover runners every hostile call is refused before a row, a workflow or a schedule exists."""
    touched: list[str] = []
    for method in ("start_workflow", "create_schedule", "get_schedule_handle"):

        def record(*args: object, _method: str = method, **kwargs: object) -> NoReturn:
            touched.append(_method)
            raise AssertionError(f"{_method} called for hostile input")

        monkeypatch.setattr(Client, method, record)
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with mode(conf, registry, client=temporal_env.client) as runner:
        for _case, error, override in HOSTILE_CALLS:
            name, data, kwargs = split(override)
            with pytest.raises(error):
                await runner.schedule_job(name, data, **kwargs)
            if "job_id" not in kwargs:
                with pytest.raises(error):
                    await runner.schedule_recurring_job(name, data, "15 minutes", **kwargs)
        for _case, spec in HOSTILE_SPECS:
            with pytest.raises(InvalidScheduleError):
                await runner.schedule_recurring_job("record", 1, spec, tenant_id="t1")
        await assert_nothing_written(runner, conn)
    assert touched == []
