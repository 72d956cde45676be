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
import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

from . import validation
from .db import TRANSIENT, Database, Transaction
from .encryption import Column, open_strict, seal
from .errors import ValidationError

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
    key = {"tenant": tenant_id, "job_id": job_id, "step_name": step}

    async def work(tx: Transaction) -> tuple[bool, Any]:
        detail_id = uuid4()
        taken = await tx.fetch("begin_once_step", {**key, "detail_id": detail_id, "retry_count": retry_count})
        if not taken:
            (row,) = await tx.fetch("once_step_result", key)
            return False, row["result"]
        await tx.fetch("step_search_path", None)
        try:
            pending = fn(tx.connection)
            if not inspect.isawaitable(pending):
                raise ValidationError(f"once-step {step!r}: fn must be an async function taking the connection")
            value = await pending
        except ValidationError:
            raise
        except TRANSIENT:
            raise  # the transaction is gone with its connection: the whole step is retried
        except Exception as exc:
            raise _StepRaised(exc) from exc
        text = validation.encode_payload(value, _MAX_RESULT_BYTES)
        stored = (
            text if db.keys is None or value is None else seal(db.keys, text, tenant=tenant_id, column=Column.DETAIL)
        )
        result = None if value is None else Jsonb(value, dumps=lambda _: stored)
        await tx.execute("finish_once_step", {"tenant": tenant_id, "detail_id": detail_id, "result": result})
        return True, json.loads(text)

    try:
        ran, value = await db.transact(work, what=f"once-step {step!r}")
    except _StepRaised as raised:
        raise raised.error from None
    if ran:
        return value
    return open_strict(db.keys, value, tenant=tenant_id, column=Column.DETAIL)
