"""Input checks on tenant ids, job ids, run_at and payload size."""

from datetime import datetime
from uuid import uuid4

import pytest

from algajobs import (
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidTenantError,
    PayloadTooLargeError,
    validation,
)
from algajobs.db import batch_spans, utf8_size
from algajobs.errors import PayloadValidationError
from algajobs.validation import encode_result


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 200, "../etc", None, 42])
def test_malformed_tenants_are_rejected(bad: object) -> None:
    """Tenant ids are 1..128 safe characters."""
    with pytest.raises(InvalidTenantError):
        validation.tenant_id(bad)


def test_uuid_tenants_and_job_ids_are_accepted() -> None:
    """UUIDs work as objects or strings."""
    value = uuid4()
    assert validation.tenant_id(value) == str(value)
    assert validation.job_id(str(value)) == value


@pytest.mark.parametrize("bad", ["nope", "", 5, None])
def test_malformed_job_ids_are_rejected(bad: object) -> None:
    """Job ids must be UUIDs."""
    with pytest.raises(InvalidJobIdError):
        validation.job_id(bad)


def test_naive_run_at_is_rejected() -> None:
    """A datetime without a timezone is ambiguous."""
    with pytest.raises(InvalidRunAtError):
        validation.run_at(datetime(2030, 1, 1))


def test_payload_over_the_limit_is_rejected() -> None:
    """The size limit applies to the serialized JSON."""
    assert validation.encode_payload({"a": 1}, 100) == '{"a":1}'
    with pytest.raises(PayloadTooLargeError):
        validation.encode_payload({"a": "x" * 200}, 100)


@pytest.mark.parametrize(
    ("sizes", "spans"),
    [
        ([10, 10, 10], [(0, 3)]),
        ([60, 60, 60], [(0, 1), (1, 2), (2, 3)]),
        ([150, 1, 1], [(0, 1), (1, 3)]),  # one item past the limit still goes, alone
        ([], [(0, 0)]),
        ([50, 50, 1], [(0, 2), (2, 3)]),
    ],
)
def test_batches_split_by_payload_bytes(sizes: list[int], spans: list[tuple[int, int]]) -> None:
    """Batch statements send payloads as one JSON value; runs stay within the limit and cover every item once."""
    assert batch_spans(sizes, limit=100) == spans


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "a\x00b", "\ud800", {"k": {1, 2}}])
def test_results_no_row_can_hold_are_refused(bad: object) -> None:
    """NaN, Infinity, NUL, a lone surrogate, a set: a handler result PostgreSQL's jsonb would refuse."""
    with pytest.raises(PayloadValidationError, match="handler result"):
        encode_result(bad)


@pytest.mark.parametrize("text", ["", "ascii only", "ü", "€uro", "🙂" * 3, '{"k":"ß"}'])
def test_batches_are_sized_in_utf8_bytes(text: str) -> None:
    """A batch's limit counts bytes as the server holds them, not characters (an emoji is four)."""
    assert utf8_size(text) == len(text.encode())


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain", "plain"),
        ("naïve ☃", "naïve ☃"),
        ("a\x00b", "a\\x00b"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("both\x00\udfff", "both\\x00\\udfff"),
    ],
)
def test_storable_text_escapes_what_postgresql_refuses(text: str, stored: str) -> None:
    assert validation.storable_text(text) == stored
    assert validation.storable(validation.storable_text(text))


def test_storable_text_keeps_no_text_as_none() -> None:
    assert validation.storable_text(None) is None
