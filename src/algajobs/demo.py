"""The demo behind ``algajobs dev`` and ``examples/demo.py``: a few jobs, progress shown live."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pydantic

from .context import JobContext
from .enums import JobStatus
from .models import JobInfo
from .protocol import JobRunner
from .registry import JobRegistry
from .retry import RetryPolicy

registry = JobRegistry()
TENANT = "demo-tenant"


class InvoiceData(pydantic.BaseModel):
    """Payload of the demo invoice job."""

    billing_cycle_id: str
    pages: int = 3


@registry.handler("generate-invoice", retry=RetryPolicy(max_attempts=3), timeout=timedelta(minutes=5))
async def generate_invoice(ctx: JobContext, data: InvoiceData) -> dict[str, int]:
    """Render pages slowly, reporting progress and one detail row per page."""
    for page in range(1, data.pages + 1):
        await asyncio.sleep(0.4)
        await ctx.report_progress(page * 100 // data.pages, f"page {page}/{data.pages}")
        await ctx.add_detail(f"render-page-{page}", result={"page": page})
    return {"pages": data.pages}


@registry.handler("flaky-sync", retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(milliseconds=300)))
def flaky_sync(ctx: JobContext, data: dict[str, str]) -> str:
    """A plain function that fails its first attempt; the engine retries it with backoff."""
    if ctx.attempt < 2:
        raise ConnectionError("upstream hiccup (retried with backoff)")
    return f"hello {data['name']} on attempt {ctx.attempt}"


async def run_demo(runner: JobRunner, *, echo: Callable[[str], None] = print, within: float = 60.0) -> list[JobInfo]:
    """Schedule three jobs, print their progress until all finish, and return them."""
    jobs = [
        await runner.schedule_job("generate-invoice", {"billing_cycle_id": "2026-11"}, tenant_id=TENANT),
        await runner.schedule_job("flaky-sync", {"name": "operator"}, tenant_id=TENANT),
        await runner.schedule_job_at(
            "generate-invoice",
            InvoiceData(billing_cycle_id="2026-12", pages=2),
            datetime.now(UTC) + timedelta(seconds=2),
            tenant_id=TENANT,
        ),
    ]
    echo(f"scheduled {len(jobs)} jobs on {jobs[0].runner_type}")
    infos: list[JobInfo] = []
    last = ""
    for _ in range(int(within / 0.2)):
        infos = [await runner.get_job_status(j.job_id, tenant_id=TENANT) for j in jobs]
        line = "  ".join(f"{i.job_name}:{i.status}:{i.progress}%" for i in infos)
        if line != last:
            echo(line)
            last = line
        if all(i.status.is_finished for i in infos):
            break
        await asyncio.sleep(0.2)
    for info in infos:
        echo(f"{info.job_id} {info.status} attempts={info.attempts} result={info.result!r}")
    return infos


def all_completed(infos: list[JobInfo]) -> bool:
    """True when every demo job completed."""
    return bool(infos) and all(i.status is JobStatus.COMPLETED for i in infos)
