"""User-style code that must type-check under mypy --strict (not run by pytest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic

from algajobs import (
    AlgaJobsError,
    JobContext,
    JobInfo,
    JobRegistry,
    JobStatus,
    RetryPolicy,
    ScheduleResult,
    Settings,
    create_runner,
)

registry = JobRegistry()


class InvoiceData(pydantic.BaseModel):
    billing_cycle_id: str


@registry.handler("generate-invoice", retry=RetryPolicy(max_attempts=3), timeout=timedelta(minutes=5))
async def generate_invoice(ctx: JobContext, data: InvoiceData) -> dict[str, int] | None:
    await ctx.report_progress(50, "halfway")
    await ctx.add_detail("render", status=JobStatus.COMPLETED, result={"pages": 3})
    if ctx.cancelled:
        return None
    return {"pages": 3}


async def schedule_and_read() -> JobStatus:
    async with create_runner(Settings.load(runner_type="postgres"), registry) as runner:
        result: ScheduleResult = await runner.schedule_job(
            "generate-invoice", InvoiceData(billing_cycle_id="c1"), tenant_id="acme"
        )
        await runner.schedule_job_at(
            "generate-invoice", {"billing_cycle_id": "c2"}, datetime.now(UTC), tenant_id="acme"
        )
        await runner.schedule_recurring_job(
            "generate-invoice", {"billing_cycle_id": "c3"}, "0 0 * * *", tenant_id="acme"
        )
        try:
            info: JobInfo = await runner.get_job_status(result.job_id, tenant_id="acme")
        except AlgaJobsError:
            return JobStatus.FAILED
        return info.status
