"""Handler results no row can hold fail their own job, and only theirs, on both engines."""

from __future__ import annotations

import math
from typing import Any

import pytest

from algajobs import JobContext, JobFailedError, JobRegistry, RetryPolicy
from algajobs.testing import JobsKit

POISON: dict[str, Any] = {"nan": math.nan, "nul": "a\x00b", "surrogate": "\ud800"}


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    """``poison`` returns the value named by its payload; ``fine`` returns its payload."""
    registry = JobRegistry()

    @registry.handler("poison", retry=RetryPolicy(max_attempts=3))
    async def poison(ctx: JobContext, data: str) -> Any:
        return POISON[data]

    @registry.handler("fine")
    async def fine(ctx: JobContext, data: int) -> int:
        return data

    return registry


@pytest.mark.parametrize("kind", sorted(POISON))
async def test_an_unstorable_result_fails_its_job_at_once_and_others_complete(
    algajobs_jobs: JobsKit, kind: str
) -> None:
    """The bad job fails on its first attempt, saying why; jobs finishing beside it complete."""
    runner = algajobs_jobs.runner
    bad = await runner.schedule_job("poison", kind, tenant_id="acme")
    good = [await runner.schedule_job("fine", n, tenant_id="acme") for n in range(5)]
    with pytest.raises(JobFailedError, match="handler result"):
        await algajobs_jobs.result(bad.job_id, tenant_id="acme")
    assert (await runner.get_job_status(bad.job_id, tenant_id="acme")).attempts == 1
    assert [await algajobs_jobs.result(job.job_id, tenant_id="acme") for job in good] == list(range(5))
