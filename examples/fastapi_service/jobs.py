"""The service's job handlers: imported by the app (to validate what it schedules) and by the worker (to run it)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pydantic

from algajobs import JobContext, JobRegistry, RetryPolicy

registry = JobRegistry()


class InvoiceRequest(pydantic.BaseModel):
    """The payload of a ``generate-invoice`` job; the API takes the same shape."""

    customer_id: str = pydantic.Field(min_length=1, max_length=64)
    amount_cents: int = pydantic.Field(gt=0)


@registry.handler(
    "generate-invoice",
    retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(seconds=1)),
    timeout=timedelta(minutes=2),
)
async def generate_invoice(ctx: JobContext, data: InvoiceRequest) -> dict[str, object]:
    """Render an invoice: two recorded steps, progress in between, a small result."""
    await ctx.report_progress(10, "rendering")
    await asyncio.sleep(0.1)  # stands in for real work (rendering a PDF, calling a payment API, ...)
    # The job id is stable across retries and engines: use it to make side effects idempotent.
    number = f"INV-{str(ctx.job_id)[:8].upper()}"
    await ctx.add_detail("render", result={"pages": 1})
    await ctx.report_progress(80, "storing")
    await ctx.add_detail("store", result={"number": number})
    return {"number": number, "customer_id": data.customer_id, "total_cents": data.amount_cents}
