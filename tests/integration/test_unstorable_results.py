"""A completion PostgreSQL refuses to store fails its own job, never the worker's other completions."""

from __future__ import annotations

import asyncio
from typing import Any

from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, Settings
from algajobs.db import Database
from algajobs.fallback.queue import Completion, QueueOps
from algajobs.limits import Limits
from tests.helpers import eventually, noop_registry

DENSE_NUMBERS = 20_000_000
"""``[1, 1, ...]`` of this length: 40 MB of JSON, under the 64 MiB result limit, too large for jsonb once parsed."""


async def test_refused_completions_fail_alone_and_the_rest_complete(settings: Settings) -> None:
    """Two results the server refuses (malformed JSON, whatever sent it), at the ends of the batch: 6 of 8 complete."""
    registry = noop_registry()
    async with PostgresRunner(settings, registry) as runner:
        scheduled = await runner.schedule_jobs("noop", list(range(8)), tenant_id="acme")
        db = await Database.open(settings)
        try:
            limits = Limits(registry, settings)
            limits.load()
            ops = QueueOps(db, "worker-1", settings.lease_duration)
            jobs = (await ops.claim(10, limits.claim_filter())).jobs
            assert len(jobs) == 8
            by_id = {job.job_id: job for job in jobs}
            ordered = [by_id[s.job_id] for s in scheduled]
            results = ['{"broken": ' if n in (0, 7) else str(n) for n in range(8)]
            refused = await ops.complete(
                [Completion(job.held, result) for job, result in zip(ordered, results, strict=True)]
            )
        finally:
            await db.close()
        infos = [await runner.get_job_status(s.job_id, tenant_id="acme") for s in scheduled]
    assert refused == 2
    assert [i.status for i in infos] == [JobStatus.FAILED, *[JobStatus.COMPLETED] * 6, JobStatus.FAILED]
    assert infos[0].error is not None and infos[0].error.startswith("its result could not be stored: ")
    assert "InvalidTextRepresentation" in infos[0].error


async def test_a_result_too_large_for_jsonb_fails_its_job_and_the_others_complete(settings: Settings) -> None:
    """The worker's flush goes on past a result the server cannot parse; before, it retried it forever."""
    registry = JobRegistry()

    @registry.handler("report")
    async def report(ctx: JobContext, data: Any) -> Any:
        return [1] * DENSE_NUMBERS if data == "huge" else data

    conf = settings.model_copy(update={"worker_concurrency": 10})
    async with PostgresRunner(conf, registry) as runner:
        scheduled = await runner.schedule_jobs("report", ["huge", *range(10)], tenant_id="acme")
        await runner.start()
        results = [await runner.wait_for_result(s.job_id, tenant_id="acme", timeout=60) for s in scheduled[1:]]
        huge = await runner.get_job_status(scheduled[0].job_id, tenant_id="acme")
        for _ in range(300):  # bounded: the failure is written by the same flush
            if huge.status is not JobStatus.PROCESSING:
                break
            await asyncio.sleep(0.1)
            huge = await runner.get_job_status(scheduled[0].job_id, tenant_id="acme")
        worker = runner.worker
        assert worker is not None
        # Counted as completed when the handler returned, then as failed once the server refused it.
        await eventually(lambda: asyncio.sleep(0, result=(worker.stats.completed, worker.stats.failed)), (10, 1).__eq__)
        await runner.stop()
    assert results == list(range(10))
    # On PostgreSQL 15 the parse of this result fails (invalid memory alloc request size 1073741824).
    assert huge.status is JobStatus.FAILED, f"the server stored {DENSE_NUMBERS:,} numbers: pick a larger result"
    assert huge.error is not None and "its result could not be stored" in huge.error
