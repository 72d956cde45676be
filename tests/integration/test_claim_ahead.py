"""Jobs a PostgreSQL worker claims ahead of its free slots: they wait for a slot, never past a cancel or a stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, ScheduleResult, Settings
from tests.helpers import eventually

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
    """A worker with 2 slots that has run 20 no-op jobs: it claims 2 jobs ahead of its free slots."""
    async with PostgresRunner(settings.model_copy(update={"worker_concurrency": 2}), registry) as runner:
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
    await asyncio.sleep(0.2)  # the cancel notice reaches the worker while w1 waits
    gate.release.set()
    assert (await eventually(lambda: _status(two_slots, w1), lambda s: s[0].is_finished))[0] is JobStatus.CANCELLED
    assert (await eventually(lambda: _status(two_slots, w2), lambda s: s[0].is_finished))[0] is JobStatus.COMPLETED
    assert "w1" not in gate.started


async def test_stop_hands_back_jobs_claimed_ahead_without_running_them(two_slots: PostgresRunner, gate: Gate) -> None:
    """A stopping worker lets running jobs finish, but slots freed meanwhile start nothing it claimed ahead."""
    b1, b2, w1, w2 = await _two_running_two_waiting(two_slots, gate)
    assert two_slots.worker is not None
    stopping = asyncio.create_task(two_slots.worker.stop(grace=5))
    await asyncio.sleep(0.2)
    gate.release.set()  # both slots free up during the grace period
    await asyncio.wait_for(stopping, 10)
    assert [await _status(two_slots, job) for job in (b1, b2, w1, w2)] == [
        (JobStatus.COMPLETED, 1),
        (JobStatus.COMPLETED, 1),
        (JobStatus.QUEUED, 0),
        (JobStatus.QUEUED, 0),
    ]
    assert sorted(gate.started) == ["b1", "b2"]


async def test_a_worker_with_long_handlers_claims_nothing_ahead(
    settings: Settings, registry: JobRegistry, gate: Gate
) -> None:
    """After a handler longer than a claim, a busy one-slot worker leaves the next job to other workers."""
    async with PostgresRunner(settings.model_copy(update={"worker_concurrency": 1}), registry) as runner:

        @registry.handler("slow")
        async def slow(ctx: JobContext, data: None) -> None:
            await asyncio.sleep(0.3)

        await runner.start()
        first = await runner.schedule_job("slow", None, tenant_id="t1")
        await eventually(lambda: _status(runner, first), lambda s: s[0] is JobStatus.COMPLETED)
        blocker = await runner.schedule_job("gate", {"name": "b", "block": True}, tenant_id="t1")
        await eventually(lambda: asyncio.sleep(0, result=gate.started), lambda s: s == ["b"])
        nxt = await runner.schedule_job("gate", {"name": "n"}, tenant_id="t1")
        await asyncio.sleep(0.5)  # several polls and a notice: a claim ahead would have taken it by now
        assert await _status(runner, nxt) == (JobStatus.QUEUED, 0)
        gate.release.set()
        assert (await eventually(lambda: _status(runner, nxt), lambda s: s[0].is_finished))[0] is JobStatus.COMPLETED
        assert (await _status(runner, blocker))[0] is JobStatus.COMPLETED
