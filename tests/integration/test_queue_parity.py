"""Queues, caps and pause through the testing kit: the same user test passes on both engines.

Only the documented kit is used (``algajobs_registry`` overridden, ``algajobs_jobs``
parametrized over both engines by the plugin), so this is also our own use of it.
"""

from __future__ import annotations

import asyncio

import pytest

from algajobs import JobContext, JobRegistry, JobStatus
from algajobs.testing import JobsKit


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    """Jobs in three queues; one type capped at one at a time."""
    registry = JobRegistry()
    running = {"now": 0, "peak": 0}
    registry.peak = running  # type: ignore[attr-defined]

    @registry.handler("send-invoice", queue="billing")
    async def send_invoice(ctx: JobContext, data: dict[str, str]) -> str:
        return f"sent {data['invoice']}"

    @registry.handler("rebuild-index", queue="maintenance", concurrency=1)
    async def rebuild_index(ctx: JobContext, data: int) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.05)
        running["now"] -= 1
        return data

    @registry.handler("send-email")
    async def send_email(ctx: JobContext, data: str) -> str:
        return data

    return registry


async def test_a_job_in_a_named_queue_runs(algajobs_jobs: JobsKit) -> None:
    """A handler's queue changes where its jobs wait, not what they return."""
    assert await algajobs_jobs.run("send-invoice", {"invoice": "inv-7"}, tenant_id="acme") == "sent inv-7"


async def test_a_capped_type_runs_one_at_a_time_and_all_complete(
    algajobs_jobs: JobsKit, algajobs_registry: JobRegistry
) -> None:
    """concurrency=1: six jobs, never two at once, every one completed."""
    runner = algajobs_jobs.runner
    jobs = [await runner.schedule_job("rebuild-index", n, tenant_id="acme") for n in range(6)]
    results = [await algajobs_jobs.result(job.job_id, tenant_id="acme") for job in jobs]
    assert results == list(range(6))
    assert algajobs_registry.peak["peak"] == 1  # type: ignore[attr-defined]


async def test_a_paused_queue_holds_its_jobs_until_resumed(algajobs_jobs: JobsKit) -> None:
    """Paused: a billing job stays queued while the default queue runs; resumed: it runs."""
    runner = algajobs_jobs.runner
    await runner.pause_queue("billing", reason="month end")
    held = await runner.schedule_job("send-invoice", {"invoice": "inv-8"}, tenant_id="acme")
    assert await algajobs_jobs.run("send-email", "hello", tenant_id="acme") == "hello"
    assert (await runner.get_job_status(held.job_id, tenant_id="acme")).status is JobStatus.QUEUED
    assert [q.queue for q in (await runner.is_healthy()).paused_queues] == ["billing"]
    await runner.resume_queue("billing")
    assert await algajobs_jobs.result(held.job_id, tenant_id="acme") == "sent inv-8"


async def test_priority_is_accepted_on_both_engines(algajobs_jobs: JobsKit) -> None:
    """Priority maps to each engine's own (a Temporal priority key here): the job runs either way."""
    assert await algajobs_jobs.run("send-email", "urgent", tenant_id="acme", priority=100) == "urgent"
    assert await algajobs_jobs.run("send-email", "later", tenant_id="acme", priority=-100) == "later"
