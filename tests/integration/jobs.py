"""Handlers used by integration tests, registered on a fresh registry per test."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pydantic

from algajobs import JobContext, JobRegistry, RetryPolicy

GARBLED_MESSAGE = "bad\x00byte"
"""An error message with a NUL, which PostgreSQL text cannot hold (stored as ``bad\\x00byte``)."""


class Invoice(pydantic.BaseModel):
    billing_cycle_id: str


class Flaky(pydantic.BaseModel):
    fail_times: int


def register_all(registry: JobRegistry, seen: list[Any]) -> None:
    """Register the handler zoo; each handler appends what it saw to ``seen``."""

    @registry.handler("invoice")
    async def invoice(ctx: JobContext, data: Invoice) -> dict[str, Any]:
        await ctx.report_progress(50, "halfway")
        await ctx.add_detail("render", status="completed", result={"pages": 3})
        seen.append((ctx.job_id, data.billing_cycle_id))
        return {"pages": 3}

    @registry.handler("plain")
    def plain(ctx: JobContext, data: Any) -> Any:
        ctx.report_progress_sync(10, "thread")
        seen.append((ctx.job_id, data))
        return data

    @registry.handler(
        "flaky",
        retry=RetryPolicy(
            max_attempts=3, initial_interval=timedelta(milliseconds=50), maximum_interval=timedelta(seconds=1)
        ),
    )
    async def flaky(ctx: JobContext, data: Flaky) -> int:
        seen.append((ctx.job_id, ctx.attempt))
        if ctx.attempt <= data.fail_times:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return ctx.attempt

    @registry.handler(
        "fatal",
        retry=RetryPolicy(max_attempts=5, initial_interval=timedelta(milliseconds=10), non_retryable=(KeyError,)),
    )
    async def fatal(ctx: JobContext, data: Any) -> None:
        seen.append((ctx.job_id, ctx.attempt))
        raise KeyError("missing thing")

    @registry.handler("garbled", retry=RetryPolicy(max_attempts=1))
    async def garbled(ctx: JobContext, data: Any) -> None:
        seen.append(ctx.job_id)
        raise ValueError(GARBLED_MESSAGE)  # as from data quoted in an error: no text column can hold it as is

    @registry.handler("slow", timeout=timedelta(milliseconds=200), retry=RetryPolicy(max_attempts=1))
    async def slow(ctx: JobContext, data: Any) -> None:
        await asyncio.sleep(5)

    @registry.handler("cooperative")
    async def cooperative(ctx: JobContext, data: Any) -> str:
        seen.append((ctx.job_id, "started"))
        for _ in range(500):
            if ctx.cancelled:
                return "stopped early"
            await asyncio.sleep(0.01)
        return "ran to the end"

    @registry.handler("record")
    async def record(ctx: JobContext, data: Any) -> None:
        seen.append((ctx.job_id, data))
