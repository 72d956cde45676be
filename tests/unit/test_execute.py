"""How a PostgreSQL worker classifies a handler's end: timeouts and cancels must not leak onto its task."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from algajobs import JobContext, JobRegistry
from algajobs.fallback.execution import Cancelled, Completed, Failed, HandlerTimeoutError, execute

pytestmark = pytest.mark.asyncio
registry = JobRegistry()
SHORT = timedelta(seconds=0.05)


class Unused:
    """A reporter for handlers that report nothing."""

    async def report_progress(self, progress: int, message: str | None) -> None:
        raise AssertionError("not expected")

    async def add_detail(self, *args: Any, **kwargs: Any) -> str:
        raise AssertionError("not expected")

    async def run_once(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not expected")


def context() -> JobContext:
    return JobContext(job_id=uuid4(), tenant_id="t", job_name="x", attempt=1, user_id=None, reporter=Unused())


@registry.handler("sleeps", timeout=SHORT)
async def sleeps(ctx: JobContext, data: float) -> str:
    await asyncio.sleep(data)
    return "done"


@registry.handler("swallows", timeout=SHORT)
async def swallows(ctx: JobContext, data: None) -> str:
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        return "kept going"
    return "slept"


@registry.handler("own-timeout")
async def own_timeout(ctx: JobContext, data: None) -> None:
    raise TimeoutError("the payment API did not answer")


stop_thread = threading.Event()


@registry.handler("blocks", timeout=SHORT)
def blocks(ctx: JobContext, data: None) -> None:
    deadline = time.monotonic() + 2
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    stop_thread.set()


@registry.handler("cancels-itself")
async def cancels_itself(ctx: JobContext, data: None) -> str:
    await asyncio.sleep(0)
    ctx.request_cancel("from the handler")
    return "returned"  # no await after the request: a cancel sent to the task would still be pending


async def run(name: str, data: Any, ctx: JobContext | None = None) -> tuple[Any, int]:
    """The outcome, and the task's cancel requests once execute returned (none may still be pending)."""
    outcome = await execute(registry.get(name), ctx or context(), data)
    task = asyncio.current_task()
    assert task is not None
    requests = task.cancelling()
    await asyncio.sleep(0)  # a cancel still pending on the task would raise here
    return outcome, requests


async def test_a_handler_within_its_timeout_completes() -> None:
    assert await run("sleeps", 0.0) == (Completed('"done"'), 0)


async def test_a_handler_past_its_timeout_fails_with_a_handler_timeout() -> None:
    outcome, pending = await run("sleeps", 5.0)
    assert isinstance(outcome, Failed) and isinstance(outcome.error, HandlerTimeoutError)
    assert outcome.message == "HandlerTimeoutError: handler exceeded its timeout of 0.05s"
    assert pending == 0


async def test_a_timeout_error_the_handler_raises_is_its_own_error() -> None:
    """An HTTP client's TimeoutError is not the job's timeout."""
    outcome, _ = await run("own-timeout", None)
    assert isinstance(outcome, Failed) and not isinstance(outcome.error, HandlerTimeoutError)
    assert outcome.message == "TimeoutError: the payment API did not answer"


async def test_a_handler_that_swallows_its_timeout_keeps_its_result_and_the_task_is_clean() -> None:
    assert await run("swallows", None) == (Completed('"kept going"'), 0)


async def test_a_cancel_request_interrupts_and_is_withdrawn() -> None:
    ctx = context()
    asyncio.get_running_loop().call_later(0.01, ctx.request_cancel, "by test")
    assert await run("sleeps", 5.0, ctx) == (Cancelled("by test"), 0)


async def test_a_cancel_after_the_handler_returned_does_not_touch_the_task() -> None:
    ctx = context()
    assert await run("sleeps", 0.0, ctx) == (Completed('"done"'), 0)
    ctx.request_cancel("too late")
    await asyncio.sleep(0)  # a cancel would land here
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_cancelling_the_task_itself_propagates() -> None:
    """A worker shutting down cancels the task: execute does not turn that into an outcome."""
    task = asyncio.create_task(execute(registry.get("sleeps"), context(), 5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_plain_handler_past_its_timeout_is_told_to_stop() -> None:
    """Its thread cannot be interrupted: the job fails at the timeout and the handler sees ctx.cancelled."""
    stop_thread.clear()
    outcome, pending = await run("blocks", None)
    assert isinstance(outcome, Failed) and isinstance(outcome.error, HandlerTimeoutError)
    assert pending == 0
    assert await asyncio.to_thread(stop_thread.wait, 1)


async def test_a_cancel_the_handler_requests_for_itself_leaves_no_cancel_pending() -> None:
    """From inside its own task the flag is enough: the outcome's write must not be cancelled."""
    assert await run("cancels-itself", None) == (Cancelled("from the handler"), 0)
