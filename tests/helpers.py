"""Shared test helpers: bounded polling instead of fixed sleeps."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from algajobs import JobContext, JobRegistry, Runner, RunnerType
from algajobs.temporal.engine import TemporalEngine

T = TypeVar("T")
DSN = os.environ.get("ALGAJOBS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float = 10.0,
    interval: float = 0.02,
) -> T:
    """Poll ``probe`` until ``accept`` holds; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + within
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


def temporal_engine(runner: Runner) -> TemporalEngine:
    """The runner's Temporal engine, typed, for tests that drive admission step by step."""
    engine = runner.engine(RunnerType.TEMPORAL)
    assert isinstance(engine, TemporalEngine)
    return engine


def noop_registry() -> JobRegistry:
    """A registry with one handler, ``noop``, that does nothing (for tests of the queue itself)."""
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        return None

    return registry
