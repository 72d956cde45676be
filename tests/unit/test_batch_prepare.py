"""A ``schedule_jobs`` batch is validated in one pass and must refuse exactly what single calls refuse."""

from typing import Any

import pydantic
import pytest

from algajobs import JobContext, JobRegistry, PayloadTooLargeError, Settings, validation
from algajobs.errors import PayloadValidationError
from algajobs.scheduling import prepare, prepare_batch

LIMIT = 64


class Order(pydantic.BaseModel):
    sku: str
    qty: int = pydantic.Field(alias="quantity")


registry = JobRegistry()


@registry.handler("any")
async def any_payload(ctx: JobContext, data: Any) -> None:
    """Takes any JSON."""


@registry.handler("order")
async def order(ctx: JobContext, data: Order) -> None:
    """Takes an Order."""


settings = Settings.load(database_url="postgresql://u@127.0.0.1:1/x", max_payload_bytes=LIMIT)

PAYLOADS: list[list[Any]] = [
    [None],
    [1, "two", [3], {"four": 4.5}, None, True],
    [{"ü": "ß€"}, "x" * (LIMIT - 2)],  # exactly at the limit: '"' + 62 x + '"'
    [{"k": i} for i in range(40)],  # the array is over the limit, every payload within it
]


@pytest.mark.parametrize("payloads", PAYLOADS)
def test_the_array_holds_each_payload_as_a_single_call_encodes_it(payloads: list[Any]) -> None:
    """The batch's JSON array is the single calls' texts joined, and each one is kept for sealing."""
    batch = prepare_batch(registry, settings, "any", payloads, tenant_id="t")
    singles = [prepare(registry, settings, "any", p, tenant_id="t").data_json for p in payloads]
    assert batch.payloads_json == f"[{','.join(singles)}]"
    assert batch.payload_texts == singles
    assert [r.data_json for r in batch.requests] == singles
    assert [r.job_id for r in batch.requests] == batch.job_ids
    assert len(batch) == len(payloads)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("x" * LIMIT, PayloadTooLargeError),  # 66 bytes as JSON
        (float("nan"), PayloadValidationError),
        ("a\x00b", PayloadValidationError),
        ("\ud800", PayloadValidationError),
        (b"\xff", PayloadValidationError),
        (object(), PayloadValidationError),
    ],
)
def test_one_bad_payload_refuses_the_batch_as_a_single_call_refuses_it(bad: object, error: type[Exception]) -> None:
    """Wherever it sits, one payload a single call refuses makes the whole batch fail with the same error."""
    with pytest.raises(error) as single:
        prepare(registry, settings, "any", bad, tenant_id="t")
    for payloads in ([bad], [1, bad], [bad, *range(30)]):
        with pytest.raises(error) as batched:
            prepare_batch(registry, settings, "any", payloads, tenant_id="t")
        assert str(batched.value) == str(single.value)


def test_models_validate_and_serialize_by_alias_and_errors_name_the_payload() -> None:
    """Model instances and dicts both validate; a bad one is named by its index in the batch."""
    batch = prepare_batch(
        registry, settings, "order", [Order(sku="a", quantity=1), {"sku": "b", "quantity": 2}], tenant_id="t"
    )
    assert batch.values == [{"sku": "a", "quantity": 1}, {"sku": "b", "quantity": 2}]
    bad = [{"sku": f"s{i}"} for i in range(1000)]  # every one invalid: the message names only the first
    for payloads, at in (([{"sku": "a", "quantity": 1}, {"sku": "b"}], 1), (bad, 0)):
        with pytest.raises(PayloadValidationError) as single:
            prepare(registry, settings, "order", payloads[at], tenant_id="t")
        with pytest.raises(PayloadValidationError) as batched:
            prepare_batch(registry, settings, "order", payloads, tenant_id="t")
        assert str(batched.value) == f"{single.value} (payload {at} of the batch)"


def test_encode_payloads_checks_each_payload_against_the_limit() -> None:
    """Over the limit as a whole is fine; one payload over it is not."""
    within = ["y" * (LIMIT - 2)] * 3
    assert validation.encode_payloads(within, LIMIT) == validation.encode_payloads(within, 10**9)
    with pytest.raises(PayloadTooLargeError, match=f"payload is {LIMIT + 1} bytes"):
        validation.encode_payloads([*within, "z" * (LIMIT - 1)], LIMIT)
