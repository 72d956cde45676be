"""A two-minute tour: schedule jobs on the PostgreSQL engine and watch them run.

Uses DATABASE_URL (default: postgres on 127.0.0.1:5432) and its own schema,
``algajobs_demo``, which it leaves behind for you to inspect.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pydantic

from algajobs import JobContext, JobRegistry, JobStatus, RetryPolicy, Settings, create_runner

registry = JobRegistry()


class InvoiceData(pydantic.BaseModel):
    billing_cycle_id: str
    pages: int = 3


@registry.handler("generate-invoice", retry=RetryPolicy(max_attempts=3), timeout=timedelta(minutes=5))
async def generate_invoice(ctx: JobContext, data: InvoiceData) -> dict[str, int]:
    for page in range(1, data.pages + 1):
        await asyncio.sleep(0.3)
        await ctx.report_progress(page * 100 // data.pages, f"page {page}/{data.pages}")
        await ctx.add_detail(f"render-page-{page}", result={"page": page})
    return {"pages": data.pages}


@registry.handler(
    "flaky-sync",
    retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=300)),
)
def flaky_sync(ctx: JobContext, data: dict[str, str]) -> str:
    if ctx.attempt < 2:
        raise ConnectionError("upstream hiccup (retried with backoff)")
    return f"hello {data['name']} on attempt {ctx.attempt}"


async def main() -> None:
    settings = Settings.load(
        runner_type=os.environ.get("JOB_RUNNER_TYPE", "postgres"),
        schema_name=os.environ.get("JOB_SCHEMA", "algajobs_demo"),
    )
    tenant = "demo-tenant"
    async with create_runner(settings, registry) as runner:
        await runner.start()
        jobs = [
            await runner.schedule_job("generate-invoice", {"billing_cycle_id": "2026-11"}, tenant_id=tenant),
            await runner.schedule_job("flaky-sync", {"name": "operator"}, tenant_id=tenant),
            await runner.schedule_job_at(
                "generate-invoice",
                InvoiceData(billing_cycle_id="2026-12", pages=2),
                datetime.now(UTC) + timedelta(seconds=2),
                tenant_id=tenant,
            ),
        ]
        print(f"scheduled {len(jobs)} jobs on {jobs[0].runner_type} (schema {settings.schema_name})")
        for _ in range(100):
            infos = [await runner.get_job_status(j.job_id, tenant_id=tenant) for j in jobs]
            line = "  ".join(f"{i.job_name}:{i.status}:{i.progress:>3}%" for i in infos)
            print(f"\r{line}", end="", flush=True)
            if all(i.status.is_finished for i in infos):
                break
            await asyncio.sleep(0.2)
        print()
        for info in infos:
            print(f"{info.job_id} {info.status} attempts={info.attempts} result={info.result} error={info.error}")
        counts = await runner.count_jobs_by_status(tenant_id=tenant)
        print("counts:", {s.value: n for s, n in counts.items() if n})
        if any(i.status is not JobStatus.COMPLETED for i in infos):
            raise SystemExit("demo: a job did not complete")


if __name__ == "__main__":
    asyncio.run(main())
