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
