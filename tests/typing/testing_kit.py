"""A user's tests written against the testing kit must type-check under mypy --strict (not run by pytest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from algajobs import JobContext, JobFailedError, JobRegistry, JobStatus
from algajobs.testing import JobsKit, jobs_kit

registry = JobRegistry()


@registry.handler("double")
async def double(ctx: JobContext, data: dict[str, int]) -> int:
    return data["n"] * 2


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    return registry


@pytest.fixture
def algajobs_settings() -> dict[str, object]:
    return {"worker_concurrency": 1}


async def test_double(algajobs_jobs: JobsKit) -> None:
    result: object = await algajobs_jobs.run("double", {"n": 2}, tenant_id="acme", timeout=5.0)
    assert result == 4
    job = await algajobs_jobs.runner.schedule_job_at(
        "double", {"n": 3}, await algajobs_jobs.now() + timedelta(hours=6), tenant_id="acme"
    )
    await algajobs_jobs.advance(timedelta(hours=1))
    await algajobs_jobs.drain(timeout=5.0)
    assert await algajobs_jobs.result(job.job_id, tenant_id="acme") == 6
    info = await algajobs_jobs.runner.get_job_status(job.job_id, tenant_id="acme")
    assert info.status is JobStatus.COMPLETED
    assert algajobs_jobs.engine in ("temporal", "postgres")


async def without_pytest(url: str) -> None:
    async with jobs_kit(registry, engine="postgres", database_url=url, timeout=10.0) as jobs:
        try:
            await jobs.run("double", {"n": 1}, tenant_id="acme")
        except JobFailedError as failure:
            print(failure)
