"""Jobs a PostgreSQL worker claims ahead of its free slots: they wait for a slot, never past a cancel or a stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, ScheduleResult, Settings
from tests.helpers import DSN, eventually

pytestmark = pytest.mark.asyncio


@dataclass
class Gate:
    """Handlers named in ``started`` as they start; a ``block`` payload waits for ``release``."""

    started: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def gate(registry: JobRegistry) -> Gate:
    state = Gate()

    @registry.handler("gate")
    async def handle(ctx: JobContext, data: dict[str, Any]) -> None:
        state.started.append(data["name"])
        if data.get("block"):
            await state.release.wait()

    return state


@pytest.fixture
async def two_slots(settings: Settings, registry: JobRegistry, gate: Gate) -> AsyncIterator[PostgresRunner]:
    """A worker with 2 slots that has run 20 no-op jobs: it claims 2 jobs ahead of its free slots.

    Its lease is 30 s, so a job claimed ahead waits up to 1 s for a slot before it is handed back.
    """
    update = {"worker_concurrency": 2, "lease_duration": timedelta(seconds=30)}
    async with PostgresRunner(settings.model_copy(update=update), registry) as runner:
        await runner.start()
        await runner.schedule_jobs("gate", [{"name": f"warm{i}"} for i in range(20)], tenant_id="t1")
        await eventually(lambda: _status_counts(runner), lambda c: c.get(JobStatus.COMPLETED) == 20)
        gate.started.clear()
        yield runner


async def _status_counts(runner: PostgresRunner) -> dict[JobStatus, int]:
    return await runner.count_jobs_by_status(tenant_id="t1", job_name="gate")


async def _status(runner: PostgresRunner, job: ScheduleResult) -> tuple[JobStatus, int]:
    info = await runner.get_job_status(job.job_id, tenant_id="t1")
    return info.status, info.attempts


async def _two_running_two_waiting(runner: PostgresRunner, gate: Gate) -> list[ScheduleResult]:
    """Two blocking jobs hold both slots; two more are claimed ahead, waiting for one."""
    jobs = [
        await runner.schedule_job("gate", {"name": name, "block": name.startswith("b")}, tenant_id="t1", priority=p)
        for name, p in (("b1", 9), ("b2", 9), ("w1", 0), ("w2", 0))
    ]
    await eventually(lambda: _status_counts(runner), lambda c: c.get(JobStatus.PROCESSING) == 4)
    assert sorted(gate.started) == ["b1", "b2"]  # claimed, not started
    return jobs


async def test_a_job_claimed_ahead_waits_for_a_free_slot(two_slots: PostgresRunner, gate: Gate) -> None:
    """With both slots busy, the worker already holds the next jobs; they start as the slots free up."""
    *_, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    gate.release.set()
    for job in (w1, w2):
        assert (await eventually(lambda j=job: _status(two_slots, j), lambda s: s[0].is_finished)) == (
            JobStatus.COMPLETED,
            1,
        )
    assert sorted(gate.started) == ["b1", "b2", "w1", "w2"]


async def test_a_job_cancelled_while_it_waits_for_a_slot_never_runs(two_slots: PostgresRunner, gate: Gate) -> None:
    """The cancel reaches the waiting job: when a slot frees, it ends cancelled and its handler never starts."""
    *_, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    await two_slots.cancel_job(w1.job_id, tenant_id="t1", cancelled_by="test")
    worker = two_slots.worker
    assert worker is not None
    # The notice reaches the waiting job (or, if the wait bound came first, the row's flag ends it).
    waiting = worker._running.get(w1.job_id)
    if waiting is not None:
        await eventually(lambda: asyncio.sleep(0, result=waiting.ctx.cancelled), bool, within=0.8)
    gate.release.set()
    assert (await eventually(lambda: _status(two_slots, w1), lambda s: s[0].is_finished))[0] is JobStatus.CANCELLED
    assert (await eventually(lambda: _status(two_slots, w2), lambda s: s[0].is_finished))[0] is JobStatus.COMPLETED
    assert "w1" not in gate.started


async def test_stop_hands_back_jobs_claimed_ahead_at_once_without_running_them(
    two_slots: PostgresRunner, gate: Gate
) -> None:
    """A stopping worker hands back what it claimed ahead before its grace period, and starts none of it."""
    b1, b2, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    assert two_slots.worker is not None
    stopping = asyncio.create_task(two_slots.worker.stop(grace=5))
    # Back in the queue while both slots are still busy: not after the grace period.
    await eventually(lambda: _status(two_slots, w2), lambda s: s == (JobStatus.QUEUED, 0), within=0.8)
    assert await _status(two_slots, w1) == (JobStatus.QUEUED, 0)
    assert not stopping.done()
    gate.release.set()  # both slots free up during the grace period: they start nothing
    await asyncio.wait_for(stopping, 10)
    assert [await _status(two_slots, job) for job in (b1, b2, w1, w2)] == [
        (JobStatus.COMPLETED, 1),
        (JobStatus.COMPLETED, 1),
        (JobStatus.QUEUED, 0),
        (JobStatus.QUEUED, 0),
    ]
    assert sorted(gate.started) == ["b1", "b2"]


async def test_jobs_claimed_ahead_behind_handlers_that_got_longer_go_back_to_the_queue(
    two_slots: PostgresRunner, gate: Gate
) -> None:
    """The averages said short, the handlers now block: after 1 s the waiting jobs are handed back, unrun.

    The worker then claims none ahead until a handler finishes, so they wait in the queue
    (where another worker could take them), and run once a slot frees.
    """
    b1, b2, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    for job in (w1, w2):
        await eventually(lambda j=job: _status(two_slots, j), lambda s: s == (JobStatus.QUEUED, 0), within=3)
    assert [await _status(two_slots, job) for job in (b1, b2)] == [(JobStatus.PROCESSING, 1)] * 2
    await asyncio.sleep(0.3)  # notices and polls: a worker still claiming ahead would take them again at once
    assert [await _status(two_slots, job) for job in (w1, w2)] == [(JobStatus.QUEUED, 0)] * 2
    gate.release.set()
    for job in (w1, w2):
        assert await eventually(lambda j=job: _status(two_slots, j), lambda s: s[0].is_finished) == (
            JobStatus.COMPLETED,
            1,
        )
    assert sorted(gate.started) == ["b1", "b2", "w1", "w2"]


async def test_a_cancelled_job_handed_back_for_want_of_a_slot_ends_cancelled(
    two_slots: PostgresRunner, gate: Gate
) -> None:
    """The wait bound lets go of a job cancelled meanwhile as cancelled, not queued again."""
    b1, b2, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    await two_slots.cancel_job(w1.job_id, tenant_id="t1", cancelled_by="test")
    assert (await eventually(lambda: _status(two_slots, w1), lambda s: s[0].is_finished, within=3))[
        0
    ] is JobStatus.CANCELLED
    await eventually(lambda: _status(two_slots, w2), lambda s: s == (JobStatus.QUEUED, 0), within=3)
    assert [await _status(two_slots, job) for job in (b1, b2)] == [(JobStatus.PROCESSING, 1)] * 2
    gate.release.set()
    assert (await eventually(lambda: _status(two_slots, w2), lambda s: s[0].is_finished))[0] is JobStatus.COMPLETED
    assert "w1" not in gate.started


async def test_jobs_claimed_together_start_in_priority_order(settings: Settings) -> None:
    """One slot, so jobs claimed ahead wait: the higher priority starts first, whatever the table order.

    An UPDATE returns its rows in table order; started in that order, a low-priority job
    inserted first overtook higher ones claimed in the same statement.
    """
    ran: list[str] = []
    registry = JobRegistry()

    @registry.handler("ordered")
    async def ordered(ctx: JobContext, data: str) -> None:
        ran.append(data)

    conf = settings.model_copy(update={"worker_concurrency": 1})
    async with PostgresRunner(conf, registry) as runner:
        for rounds in range(3):
            # One commit: the worker sees both batches at once, the low one first in the table.
            async with await psycopg.AsyncConnection.connect(DSN) as conn:
                await conn.execute(f"SET search_path = {settings.schema_name}")
                low = await runner.schedule_jobs(
                    "ordered", [f"low-{rounds}-{n}" for n in range(3)], tenant_id="t", connection=conn
                )
                high = await runner.schedule_jobs(
                    "ordered", [f"high-{rounds}-{n}" for n in range(3)], tenant_id="t", priority=5, connection=conn
                )
            if rounds == 0:
                await runner.start()
            for job in [*low, *high]:
                await runner.wait_for_result(job.job_id, tenant_id="t", timeout=10)
            batch, ran[:] = list(ran), []
            assert [name.split("-")[0] for name in batch] == ["high"] * 3 + ["low"] * 3, batch
        await runner.stop()
