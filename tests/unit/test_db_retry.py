"""with_retry: one plain attempt when it works, bounded backoff on transient errors only."""

from __future__ import annotations

import time

import psycopg
import pytest

from algajobs import ConfigurationError, DatabaseError, EngineUnavailableError
from algajobs.db import refused_for_its_data, translate, with_retry


class Flaky:
    """Fails with ``error`` for the first ``failures`` calls, then returns the call count."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.waits: list[float] = []

    async def __call__(self, wait: float) -> int:
        self.calls += 1
        self.waits.append(wait)
        if self.calls <= self.failures:
            raise self.error
        return self.calls


async def test_success_takes_one_call() -> None:
    operation = Flaky(0, psycopg.OperationalError("down"))
    assert await with_retry(operation, deadline=5, what="test") == 1


async def test_transient_errors_are_retried_until_success() -> None:
    operation = Flaky(3, psycopg.OperationalError("connection lost"))
    assert await with_retry(operation, deadline=5, what="test") == 4


async def test_other_errors_are_raised_at_once() -> None:
    operation = Flaky(5, psycopg.errors.UniqueViolation("duplicate"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        await with_retry(operation, deadline=5, what="test")
    assert operation.calls == 1


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (psycopg.errors.InvalidTextRepresentation("invalid input syntax for type json"), True),
        (psycopg.errors.InternalError_("invalid memory alloc request size 1073741824"), True),
        (psycopg.errors.ProgramLimitExceeded("total size of jsonb array elements exceeds the maximum"), True),
        (psycopg.errors.StatementTooComplex("stack depth limit exceeded"), True),
        (psycopg.errors.InternalError_("cache lookup failed for type 16384"), False),
        (psycopg.errors.ProgramLimitExceeded("too many notifications in the NOTIFY queue"), False),
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),
        (psycopg.errors.UniqueViolation("duplicate"), False),
        (psycopg.OperationalError("connection lost"), False),
    ],
)
def test_refused_for_its_data_only_for_what_sending_again_cannot_fix(error: psycopg.Error, refused: bool) -> None:
    assert refused_for_its_data(translate_from(error)) is refused


def translate_from(error: psycopg.Error) -> Exception:
    """The typed error the library raises for ``error``, chained to it as ``Database`` chains it."""
    try:
        raise translate(error, "test") from error
    except Exception as typed:  # noqa: BLE001 - returned for inspection
        return typed


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (psycopg.errors.ProgramLimitExceeded("total size of jsonb array elements exceeds the maximum"), False),
        (psycopg.errors.StatementTooComplex("stack depth limit exceeded"), False),
        (psycopg.errors.TooManyColumns("tables can have at most 1600 columns"), False),
        (psycopg.errors.ProgramLimitExceeded("too many notifications in the NOTIFY queue"), True),
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
    ],
)
async def test_program_limits_are_final_but_a_full_notify_queue_passes(error: psycopg.Error, retried: bool) -> None:
    operation = Flaky(1, error)
    if retried:
        assert await with_retry(operation, deadline=5, what="test") == 2
    else:
        with pytest.raises(type(error)):
            await with_retry(operation, deadline=5, what="test")
        assert operation.calls == 1
        assert isinstance(translate(error, "test"), DatabaseError)  # not EngineUnavailableError


async def test_retries_stop_at_the_deadline() -> None:
    operation = Flaky(10_000, psycopg.OperationalError("still down"))
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        await with_retry(operation, deadline=0.4, what="test")
    assert operation.calls >= 3
    assert time.monotonic() - started < 2.0


async def test_each_attempt_waits_at_most_what_is_left_of_the_deadline() -> None:
    """A pool wait never outlasts the call's deadline (with a floor that lets a reconnect finish)."""
    operation = Flaky(2, psycopg.OperationalError("down"))
    await with_retry(operation, deadline=3.0, what="test")
    assert operation.waits[0] <= 3.0
    assert operation.waits == sorted(operation.waits, reverse=True)


def test_driver_errors_become_typed_errors() -> None:
    """Transient faults mean unavailable, a missing table means unmigrated, the rest a database error."""
    assert isinstance(translate(psycopg.OperationalError("gone"), "q"), EngineUnavailableError)
    assert isinstance(translate(psycopg.errors.UndefinedTable("no jobs"), "q"), ConfigurationError)
    assert isinstance(translate(psycopg.errors.UniqueViolation("dup"), "q"), DatabaseError)
