"""Hostile input gets a typed ValidationError from the pure checks that run before any write (no server)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NoReturn, cast
from uuid import UUID, uuid4

import pydantic
import pytest

from algajobs import (
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidScheduleError,
    InvalidTenantError,
    JobContext,
    JobRegistry,
    PayloadTooLargeError,
    PayloadValidationError,
    Settings,
    UnknownJobError,
    ValidationError,
    scheduling,
    validation,
)
from algajobs.db import Database
from algajobs.schedule_spec import ScheduleSpec, SpecKind
from algajobs.store import JobStore

SETTINGS = Settings.load(runner_type="postgres", max_payload_bytes=64 * 1024)
NAN, INF = float("nan"), float("inf")
# int() reads Arabic-Indic and fullwidth digits as 0-9, so uuid.UUID() accepted these.
ARABIC_UUID = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668-1234-5678-1234-567812345678"
FULLWIDTH_UUID = "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18-1234-5678-1234-567812345678"


class Invoice(pydantic.BaseModel):
    billing_cycle_id: str
    amount: float = 0.0
    extra: Any = None


@pytest.fixture
def registry() -> JobRegistry:
    """``record`` takes any JSON; ``invoice`` a model with a float and an untyped field."""
    jobs = JobRegistry()

    @jobs.handler("record")
    async def record(ctx: JobContext, data: Any) -> None:
        return None

    @jobs.handler("invoice")
    async def invoice(ctx: JobContext, data: Invoice) -> None:
        return None

    return jobs


def prepare(registry: JobRegistry, **override: Any) -> scheduling.JobRequest:
    """``scheduling.prepare`` on a valid call with ``override`` applied."""
    call: dict[str, Any] = {"name": "record", "data": {"ok": 1}, "tenant_id": "t1"}
    call.update(override)
    return scheduling.prepare(registry, SETTINGS, call.pop("name"), call.pop("data"), **call)


def circular_dict() -> dict[str, Any]:
    """A dict that contains itself."""
    value: dict[str, Any] = {}
    value["self"] = value
    return value


def circular_list() -> list[Any]:
    """A list that contains itself."""
    value: list[Any] = []
    value.append(value)
    return value


def nested(depth: int) -> Any:
    """``depth`` lists inside each other."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_CALLS: list[tuple[str, type[ValidationError], dict[str, Any]]] = [
    # tenant ids: fullmatch, ASCII only, no NUL or surrogates
    ("tenant with trailing newline", InvalidTenantError, {"tenant_id": "acme\n"}),
    ("tenant with NUL", InvalidTenantError, {"tenant_id": "acme\x00"}),
    ("tenant lone surrogate", InvalidTenantError, {"tenant_id": "acme\ud800"}),
    ("tenant Arabic-Indic digits", InvalidTenantError, {"tenant_id": "\u0661\u0662"}),
    ("tenant fullwidth digit", InvalidTenantError, {"tenant_id": "\uff11"}),
    ("tenant bytes", InvalidTenantError, {"tenant_id": b"acme"}),
    # user ids and singleton keys: PostgreSQL text holds neither NUL nor surrogates
    ("user_id with NUL", ValidationError, {"user_id": "u\x00"}),
    ("user_id lone surrogate", ValidationError, {"user_id": "u\udfff"}),
    ("user_id not a string", ValidationError, {"user_id": 7}),
    ("singleton_key with NUL", ValidationError, {"singleton_key": "\x00"}),
    ("singleton_key lone surrogate", ValidationError, {"singleton_key": "k\ud800"}),
    ("singleton_key not a string", ValidationError, {"singleton_key": ["k"]}),
    # job names
    ("job name with NUL", UnknownJobError, {"name": "record\x00"}),
    ("job name lone surrogate", UnknownJobError, {"name": "record\ud800"}),
    ("job name trailing newline", UnknownJobError, {"name": "record\n"}),
    ("job name unhashable list", UnknownJobError, {"name": ["record"]}),
    ("job name unhashable dict", UnknownJobError, {"name": {}}),
    ("job name None", UnknownJobError, {"name": None}),
    # payload text
    ("NUL in payload string", PayloadValidationError, {"data": {"a": "x\x00y"}}),
    ("NUL in payload key", PayloadValidationError, {"data": {"a\x00": 1}}),
    ("NUL deep in payload", PayloadValidationError, {"data": [[{"k": ["\x00"]}]]}),
    ("NUL after escaped backslash", PayloadValidationError, {"data": "\\\x00"}),
    ("lone surrogate in payload string", PayloadValidationError, {"data": {"a": "\ud800"}}),
    ("lone surrogate in payload key", PayloadValidationError, {"data": {"\udfff": 1}}),
    ("split surrogate pair in payload", PayloadValidationError, {"data": "\ud83d\ude00"}),
    ("NUL in a model's str field", PayloadValidationError, {"name": "invoice", "data": {"billing_cycle_id": "\x00"}}),
    # non-finite floats: JSON has none, so they must not become null
    ("NaN payload", PayloadValidationError, {"data": NAN}),
    ("NaN in payload", PayloadValidationError, {"data": {"a": NAN}}),
    ("+Inf in payload", PayloadValidationError, {"data": [INF]}),
    ("-Inf nested in payload", PayloadValidationError, {"data": {"a": {"b": [1, -INF]}}}),
    ("NaN as dict value in tuple", PayloadValidationError, {"data": ({"a": NAN},)}),
    (
        "NaN from a model's float field",
        PayloadValidationError,
        {"name": "invoice", "data": {"billing_cycle_id": "c", "amount": "NaN"}},
    ),
    (
        "-Infinity string to model float",
        PayloadValidationError,
        {"name": "invoice", "data": {"billing_cycle_id": "c", "amount": "-inf"}},
    ),
    (
        "+Inf in a model's float field",
        PayloadValidationError,
        {"name": "invoice", "data": {"billing_cycle_id": "c", "amount": INF}},
    ),
    (
        "NaN in a model's untyped field",
        PayloadValidationError,
        {"name": "invoice", "data": {"billing_cycle_id": "c", "extra": [NAN]}},
    ),
    (
        "NaN in a model instance",
        PayloadValidationError,
        {"name": "invoice", "data": Invoice(billing_cycle_id="c", extra={"x": NAN})},
    ),
    (
        "NaN in a model instance for an untyped job",
        PayloadValidationError,
        {"data": Invoice(billing_cycle_id="c", amount=NAN)},
    ),
    # not serialisable at all
    ("circular dict", PayloadValidationError, {"data": circular_dict()}),
    ("circular list", PayloadValidationError, {"data": circular_list()}),
    ("arbitrary object", PayloadValidationError, {"data": {"a": object()}}),
    ("function", PayloadValidationError, {"data": [len]}),
    ("bytes that are not UTF-8", PayloadValidationError, {"data": {"a": b"\xff"}}),
    ("int beyond the digit limit", PayloadValidationError, {"data": 10**5000}),
    ("nesting deeper than JSON tools allow", PayloadValidationError, {"data": nested(5_000)}),
    # priority: an int, never a numeric string (least of all non-ASCII digits)
    ("priority Arabic-Indic string", ValidationError, {"priority": "\u0661\u0662"}),
    ("priority fullwidth string", ValidationError, {"priority": "\uff11"}),
    ("priority ASCII string", ValidationError, {"priority": "12"}),
    ("priority float", ValidationError, {"priority": 1.5}),
    ("priority NaN", ValidationError, {"priority": NAN}),
    ("priority bool", ValidationError, {"priority": True}),
    ("priority huge", ValidationError, {"priority": 10**30}),
    ("priority None", ValidationError, {"priority": None}),
    # job ids: ASCII hex UUIDs only
    ("job id Arabic-Indic digits", InvalidJobIdError, {"job_id": ARABIC_UUID}),
    ("job id fullwidth digits", InvalidJobIdError, {"job_id": FULLWIDTH_UUID}),
    ("job id with a sign", InvalidJobIdError, {"job_id": "+2345678-1234-5678-1234-567812345678"}),
    ("job id with an underscore", InvalidJobIdError, {"job_id": "1234567_-1234-5678-1234-567812345678"}),
    ("job id with inner spaces", InvalidJobIdError, {"job_id": " 2345678-1234-5678-1234-567812345678"}),
    ("job id with NUL", InvalidJobIdError, {"job_id": "12345678-1234-5678-1234-56781234567\x00"}),
    ("job id int", InvalidJobIdError, {"job_id": 5}),
    # run_at
    (
        "run_at that overflows UTC",
        InvalidRunAtError,
        {"run_at": datetime.max.replace(tzinfo=timezone(-timedelta(hours=5)))},
    ),
    (
        "run_at before year 1 in UTC",
        InvalidRunAtError,
        {"run_at": datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))},
    ),
    ("run_at as a string", InvalidRunAtError, {"run_at": "2030-01-01T00:00:00+00:00"}),
    ("run_at naive", InvalidRunAtError, {"run_at": datetime(2030, 1, 1)}),
]


@pytest.mark.parametrize(("case", "error", "override"), HOSTILE_CALLS, ids=[c[0] for c in HOSTILE_CALLS])
def test_prepare_refuses_hostile_input(
    registry: JobRegistry, case: str, error: type[ValidationError], override: dict[str, Any]
) -> None:
    """Each hostile argument raises its typed ValidationError from ``prepare``, before any engine."""
    with pytest.raises(error) as caught:
        prepare(registry, **override)
    message = str(caught.value)
    assert message
    assert "\x00" not in message
    assert len(message) < 2_000  # hostile input is quoted, not echoed whole


FRIENDLY_PAYLOADS: list[tuple[str, Any]] = [
    ("unicode text and emoji", {"name": "héllo wörld 😀", "ключ": "значение"}),
    ("Arabic-Indic digits as text", {"n": "\u0661\u0662", "w": "\uff11"}),
    ("literal backslash-u0000 text", {"path": "\\u0000", "deeper": "\\\\u0000", "k\\u0000": 1}),
    ("control characters other than NUL", {"t": "a\tb\nc\x01\x1f"}),
    ("largest finite floats", [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -0.0]),
    ("big but printable int", 10**100),
    ("nesting well within limits", nested(100)),
    ("null", None),
]


@pytest.mark.parametrize(("case", "data"), FRIENDLY_PAYLOADS, ids=[c[0] for c in FRIENDLY_PAYLOADS])
def test_prepare_keeps_legitimate_payloads(registry: JobRegistry, case: str, data: Any) -> None:
    """Unusual but valid JSON still passes, and the stored text decodes to the validated values."""
    request = prepare(registry, data=data)
    assert json.loads(request.data_json) == request.data
    assert request.data_json.encode()  # valid UTF-8 for PostgreSQL


def test_prepare_keeps_model_payloads_and_friendly_arguments(registry: JobRegistry) -> None:
    """A model instance, a UUID tenant, an explicit job id and an aware run_at still work."""
    tenant, job, run_at = uuid4(), uuid4(), datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    request = prepare(
        registry,
        name="invoice",
        data=Invoice(billing_cycle_id="c", amount=2.5, extra={"a": [1, "b"]}),
        tenant_id=tenant,
        job_id=str(job).upper(),
        run_at=run_at,
        user_id="ünïcode-user",
        singleton_key="key with spaces",
        priority=-7,
    )
    assert request.data == {"billing_cycle_id": "c", "amount": 2.5, "extra": {"a": [1, "b"]}}
    assert (request.tenant_id, request.job_id, request.run_at) == (str(tenant), job, run_at)
    assert (request.user_id, request.singleton_key, request.priority) == ("ünïcode-user", "key with spaces", -7)


@pytest.mark.parametrize(
    "value",
    [str(UUID(int=1)), str(UUID(int=1)).upper(), UUID(int=1).hex, f"{{{UUID(int=1)}}}", f"urn:uuid:{UUID(int=1)}"],
)
def test_usual_uuid_spellings_stay_valid_job_ids(value: str) -> None:
    """Canonical, upper-case, bare hex, braced and URN forms are all the same job id."""
    assert validation.job_id(value) == UUID(int=1)


def test_payload_size_limit_counts_utf8_bytes() -> None:
    """The limit applies to the UTF-8 JSON text PostgreSQL receives."""
    assert validation.encode_payload({"a": "é"}, 100) == '{"a":"é"}'
    with pytest.raises(PayloadTooLargeError):
        validation.encode_payload({"a": "é" * 60}, 100)


@pytest.mark.parametrize(
    "value",
    [NAN, [INF], {"a": -INF}, {"a": "\x00"}, {"\x00": 1}, "\ud800", circular_list(), {"a": object()}, 10**5000],
    ids=["NaN", "Inf", "-Inf", "NUL value", "NUL key", "surrogate", "cycle", "object", "huge int"],
)
def test_encode_payload_refuses_what_json_or_postgresql_cannot_hold(value: Any) -> None:
    """Non-finite floats, NUL, surrogates and unserialisable values raise PayloadValidationError."""
    with pytest.raises(PayloadValidationError):
        validation.encode_payload(value, 1_000_000)


HOSTILE_SPECS: list[tuple[str, object]] = [
    ("cron on 31 February", "0 0 31 2 *"),
    ("cron on 30 February", "0 0 30 2 *"),
    ("cron on 31st of 30-day months", "0 0 31 4,6,9,11 *"),
    ("a million weeks", "1000000 weeks"),
    ("just over the maximum", "3651 days"),
    ("522 weeks", "522 weeks"),
    ("interval past timedelta's range", "99999999999999999999 seconds"),
    ("interval beyond int digit limit", "9" * 5000 + " seconds"),
    ("Arabic-Indic interval", "\u0661\u0665 minutes"),
    ("fullwidth interval", "\uff11\uff15 minutes"),
    ("Arabic-Indic cron", "\u0660 \u0660 * * *"),
    ("NUL in interval", "15 minutes\x00"),
    ("NUL in cron", "0 0 * * *\x00"),
    ("no-break space in interval", "15\u00a0minutes"),
    ("no-break space in cron", "0\u00a00 * * *"),
    ("long s matching s case-insensitively", "15 \u017feconds"),
    ("lone surrogate", "0 0 * * \ud800"),
    ("timedelta over the maximum", timedelta(days=3651)),
    ("timedelta.max", timedelta.max),
    ("zero timedelta", timedelta(0)),
    ("negative timedelta", timedelta(seconds=-5)),
    ("sub-second timedelta", timedelta(milliseconds=500)),
    ("int", 15),
    ("None", None),
    ("bytes", b"0 0 * * *"),
]


@pytest.mark.parametrize(("case", "spec"), HOSTILE_SPECS, ids=[c[0] for c in HOSTILE_SPECS])
def test_schedule_spec_refuses_hostile_recurrences(case: str, spec: object) -> None:
    """Never-firing crons, out-of-range intervals and non-ASCII numbers raise InvalidScheduleError."""
    with pytest.raises(InvalidScheduleError):
        ScheduleSpec.parse(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "interval"),
    [
        ("1 second", timedelta(seconds=1)),
        ("3650 days", timedelta(days=3650)),
        ("521 weeks", timedelta(weeks=521)),
        ("  15 Minutes \n", timedelta(minutes=15)),
        (timedelta(days=3650), timedelta(days=3650)),
        (timedelta(seconds=1), timedelta(seconds=1)),
    ],
)
def test_schedule_spec_bounds_are_inclusive(spec: str | timedelta, interval: timedelta) -> None:
    """One second and 3,650 days are the smallest and largest intervals accepted."""
    parsed = ScheduleSpec.parse(spec)
    assert (parsed.kind, parsed.interval) == (SpecKind.INTERVAL, interval)


@pytest.mark.parametrize("spec", ["0 0 29 2 *", "0 0 31 * *", "*/5 * * * *", "0 9 * * MON-FRI", "0  0 * * *"])
def test_rare_but_real_crons_stay_valid(spec: str) -> None:
    """A leap-day cron fires every four years, so it is valid; spacing is normalised."""
    parsed = ScheduleSpec.parse(spec)
    assert parsed.kind is SpecKind.CRON
    assert parsed.next_after(datetime(2026, 1, 1, tzinfo=UTC)) > datetime(2026, 1, 1, tzinfo=UTC)


HOSTILE_PAGES: list[tuple[str, object, object]] = [
    ("limit as string", "10", 0),
    ("limit None", None, 0),
    ("limit float", 10.0, 0),
    ("limit bool", True, 0),
    ("limit zero", 0, 0),
    ("limit negative", -1, 0),
    ("limit over the page size", 1_001, 0),
    ("limit huge", 10**30, 0),
    ("limit NaN", NAN, 0),
    ("offset float", 10, 1.5),
    ("offset as string", 10, "0"),
    ("offset None", 10, None),
    ("offset bool", 10, False),
    ("offset negative", 10, -1),
    ("offset past bigint", 10, 2**63),
    ("offset huge", 10, 10**30),
]


@pytest.mark.parametrize(("case", "limit", "offset"), HOSTILE_PAGES, ids=[c[0] for c in HOSTILE_PAGES])
def test_paging_refuses_wrong_types_and_ranges(case: str, limit: object, offset: object) -> None:
    """Paging arguments are ints in range, never silently coerced, never sent to PostgreSQL to fail."""
    with pytest.raises(ValidationError):
        validation.page(limit, offset)


def test_paging_accepts_the_bounds() -> None:
    """1..1000 rows and offsets up to PostgreSQL's bigint are fine."""
    assert validation.page(1, 0) == (1, 0)
    assert validation.page(1_000, 2**63 - 1) == (1_000, 2**63 - 1)


class _NoDatabase:
    """A database that fails the test if any statement reaches it."""

    async def fetch(self, name: str, params: object = None) -> NoReturn:
        raise AssertionError(f"{name} reached the database")


HOSTILE_LISTINGS: list[tuple[str, type[ValidationError], dict[str, Any]]] = [
    ("limit as string", ValidationError, {"limit": "10"}),
    ("limit None", ValidationError, {"limit": None}),
    ("offset float", ValidationError, {"offset": 1.5}),
    ("limit bool", ValidationError, {"limit": True}),
    ("offset huge", ValidationError, {"offset": 10**30}),
    ("tenant with trailing newline", InvalidTenantError, {"tenant_id": "acme\n"}),
    ("job name filter with NUL", ValidationError, {"job_name": "x\x00"}),
    ("job name filter lone surrogate", ValidationError, {"job_name": "\ud800"}),
    ("job name filter not a string", ValidationError, {"job_name": 5}),
    ("unknown status", ValidationError, {"status": "bogus"}),
    ("status unhashable", ValidationError, {"status": ["queued"]}),
]


@pytest.mark.parametrize(("case", "error", "override"), HOSTILE_LISTINGS, ids=[c[0] for c in HOSTILE_LISTINGS])
async def test_listing_refuses_hostile_filters_before_querying(
    case: str, error: type[ValidationError], override: dict[str, Any]
) -> None:
    """``list_jobs`` checks every argument before a statement is sent."""
    store = JobStore(cast(Database, _NoDatabase()))
    call: dict[str, Any] = {"tenant_id": "t1"}
    call.update(override)
    with pytest.raises(error):
        await store.list_jobs(**call)


@pytest.mark.parametrize(
    "override", [{"tenant_id": "acme\n"}, {"job_name": "x\x00"}, {"job_name": "\udfff"}, {"job_name": 5}]
)
async def test_counting_refuses_hostile_filters_before_querying(override: dict[str, Any]) -> None:
    """``count_jobs_by_status`` checks its arguments before a statement is sent."""
    store = JobStore(cast(Database, _NoDatabase()))
    call: dict[str, Any] = {"tenant_id": "t1"}
    call.update(override)
    with pytest.raises(ValidationError):
        await store.count_jobs_by_status(**call)


def test_nan_is_not_silently_turned_into_null(registry: JobRegistry) -> None:
    """The audit's silent case: NaN used to be stored as null."""
    with pytest.raises(PayloadValidationError, match=r"NaN|Infinity|finite"):
        prepare(registry, data={"a": math.nan})
