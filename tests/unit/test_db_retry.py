"""with_retry: one plain attempt when it works, bounded backoff on transient errors only."""

from __future__ import annotations

import time

import psycopg
import pytest

from algajobs.db import with_retry


class Flaky:
    """Fails with ``error`` for the first ``failures`` calls, then returns the call count."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


async def test_success_takes_one_call() -> None:
    operation = Flaky(0, psycopg.OperationalError("down"))
    assert await with_retry(operation) == 1


async def test_transient_errors_are_retried_until_success() -> None:
    operation = Flaky(3, psycopg.OperationalError("connection lost"))
    assert await with_retry(operation, deadline=5) == 4


async def test_other_errors_are_raised_at_once() -> None:
    operation = Flaky(5, psycopg.errors.UniqueViolation("duplicate"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        await with_retry(operation)
    assert operation.calls == 1


async def test_retries_stop_at_the_deadline() -> None:
    operation = Flaky(10_000, psycopg.OperationalError("still down"))
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        await with_retry(operation, deadline=0.4)
    assert operation.calls >= 3
    assert time.monotonic() - started < 2.0
