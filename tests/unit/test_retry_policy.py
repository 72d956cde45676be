"""RetryPolicy: backoff arithmetic and retry decisions."""

from datetime import timedelta

import pydantic
import pytest

from algajobs import RetryPolicy


def test_delays_grow_exponentially_and_cap() -> None:
    """Each wait multiplies by the coefficient until the maximum interval."""
    policy = RetryPolicy(
        max_attempts=10,
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=5),
    )
    assert [policy.delay_after(n).total_seconds() for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_last_attempt_is_not_retried() -> None:
    """max_attempts counts the first run."""
    policy = RetryPolicy(max_attempts=2)
    assert policy.should_retry(1, RuntimeError())
    assert not policy.should_retry(2, RuntimeError())


def test_non_retryable_types_and_subtypes_stop_retries() -> None:
    """An error listed as non-retryable (or a subclass of one) fails at once."""
    policy = RetryPolicy(max_attempts=5, non_retryable=(LookupError,))
    assert not policy.should_retry(1, KeyError("x"))
    assert policy.should_retry(1, ValueError("x"))
    assert policy.non_retryable_names == ("LookupError",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"backoff_coefficient": 0.5},
        {"initial_interval": timedelta(seconds=10), "maximum_interval": timedelta(seconds=1)},
    ],
)
def test_nonsense_policies_are_rejected(kwargs: dict[str, object]) -> None:
    """A policy that cannot mean anything fails at construction."""
    with pytest.raises(pydantic.ValidationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
