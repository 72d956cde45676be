"""Once-steps: a handler's database effects committed together with the record that they happened.

``ctx.once(step, fn)`` runs ``fn(conn)`` in one transaction with a
``job_details`` row that is unique per (job, step). Whatever ends a run early
(a worker killed, a completion lost in a cluster outage, a lease that expired,
a retry after a later failure), the next run of the job finds the row and gets
the stored result back instead of applying the effects a second time. On both
engines alike: the ledger is the monitoring table every engine writes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

from . import validation
from .db import Database, Transaction
from .encryption import Column, open_strict, seal
from .enums import JobStatus
from .errors import JobStateError, ValidationError

_IN_STEP: ContextVar[bool] = ContextVar("algajobs_in_once_step", default=False)
StepFunction = Callable[[psycopg.AsyncConnection[Any]], Awaitable[Any]]
MAX_STEP_NAME = 200
_MAX_RESULT_BYTES = 255 * 1024 * 1024  # what one jsonb value can hold


class _StepRaised(Exception):  # noqa: N818 - carries the user's exception out of the retry machinery
    def __init__(self, error: BaseException) -> None:
        self.error = error


def step_name(value: object) -> str:
    """``value`` if it is a usable step name, else ValidationError."""
    name = validation.optional_text(value, "step", MAX_STEP_NAME)
    if name is None:
        raise ValidationError("step must be a non-empty string")
    return name


async def run_once(db: Database, *, tenant_id: str, job_id: UUID, step: str, retry_count: int, fn: StepFunction) -> Any:
    """Run ``fn`` and record ``step`` in one transaction, or return the result an earlier run committed.

    ``fn`` may run more than once when its transaction does not commit (a
    dropped connection is retried); its effects on ``conn`` commit exactly
    once. An exception from ``fn`` rolls everything back and propagates as is.
    """
    if not callable(fn):
        raise ValidationError(f"once-step {step!r}: fn must be an async function taking the connection")
    if _IN_STEP.get():  # it would wait forever for the outer step's own uncommitted row, or hold a second connection
        raise ValidationError(f"once-step {step!r} inside another once-step's fn: steps cannot be nested")
    key = {"tenant": tenant_id, "job_id": job_id, "step_name": step}

    async def work(tx: Transaction) -> Any:
        detail_id = uuid4()
        taken = await tx.fetch("begin_once_step", {**key, "detail_id": detail_id, "retry_count": retry_count})
        if not taken:
            return _stored(await tx.fetch("once_step_result", key), step)
        await tx.fetch("step_search_path", None)
        value = await _call(fn, tx.connection, step)
        text = validation.encode_payload(value, _MAX_RESULT_BYTES)
        if db.keys is not None and value is not None:
            text = seal(db.keys, text, tenant=tenant_id, column=Column.DETAIL)
        # Whatever fn set (a plain SET too) goes: our statement finds our table, and nothing
        # follows the connection back to the pool; committed with the step.
        await tx.execute("reset_session", None)
        result = None if value is None else Jsonb(None, dumps=lambda _: text)
        finished = await tx.fetch("finish_once_step", {"tenant": tenant_id, "detail_id": detail_id, "result": result})
        return _stored(finished, step)

    try:
        # The first run returns the value as stored, as later runs read it (jsonb's numbers and key order).
        stored = await db.transact(work, what=f"once-step {step!r}")
    except _StepRaised as raised:
        raise raised.error from None
    return open_strict(db.keys, stored, tenant=tenant_id, column=Column.DETAIL)


async def _call(fn: StepFunction, conn: psycopg.AsyncConnection[Any], step: str) -> Any:
    """``fn(conn)``'s value; its own errors wrapped so the retry machinery passes them through untouched."""
    inside = _IN_STEP.set(True)
    try:
        pending = fn(conn)
        if not inspect.isawaitable(pending):
            raise ValidationError(f"once-step {step!r}: fn must be an async function taking the connection")
        value = await pending
    except ValidationError:
        raise
    except psycopg.Error as exc:
        if conn.broken:
            raise  # the connection is gone with its transaction: the whole step is retried
        raise _StepRaised(exc) from exc  # the user's own SQL error (a timeout, a constraint...)
    except Exception as exc:
        raise _StepRaised(exc) from exc
    finally:
        _IN_STEP.reset(inside)
    if conn.info.transaction_status is not psycopg.pq.TransactionStatus.INTRANS:
        raise ValidationError(f"once-step {step!r}: fn must not commit or roll back the step's transaction")
    return value


def _stored(rows: list[dict[str, Any]], step: str) -> Any:
    """The committed step's result, from ``once_step_result`` or ``finish_once_step``."""
    if not rows:  # the job row, and its steps with it, were deleted meanwhile (pruned)
        raise JobStateError(f"once-step {step!r}: the job no longer exists")
    if rows[0]["status"] != JobStatus.COMPLETED:
        raise JobStateError(
            f"once-step {step!r} was committed unfinished (fn committed its own transaction): its result is unknown"
        )
    return rows[0]["result"]
