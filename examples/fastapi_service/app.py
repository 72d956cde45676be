"""The HTTP API: schedules invoice jobs and reports on them; it runs no jobs itself.

One runner per process, opened in the lifespan: it connects to PostgreSQL
(and Temporal), applies migrations, and closes cleanly on shutdown. The
tenant comes from a header here; in a real service, from the authenticated
caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response

from algajobs import JobNotFoundError, Runner, Settings, ValidationError, create_runner

from .jobs import InvoiceRequest, registry


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open one runner for the app's lifetime (settings from the environment)."""
    async with create_runner(Settings.load(), registry) as runner:
        app.state.runner = runner
        yield


app = FastAPI(title="invoices", lifespan=lifespan)


def get_runner(request: Request) -> Runner:
    """The runner the lifespan opened."""
    runner: Runner = request.app.state.runner
    return runner


RunnerDep = Annotated[Runner, Depends(get_runner)]
TenantDep = Annotated[str, Header(alias="X-Tenant-ID")]


@app.post("/invoices", status_code=202)
async def create_invoice(body: InvoiceRequest, runner: RunnerDep, tenant: TenantDep) -> dict[str, Any]:
    """Schedule an invoice; the answer carries the job id to poll."""
    try:
        job = await runner.schedule_job("generate-invoice", body, tenant_id=tenant)
    except ValidationError as exc:  # a malformed tenant id, for one
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return {"job_id": str(job.job_id), "runner_type": job.runner_type.value}


@app.get("/jobs/{job_id}")
async def get_job(job_id: str, runner: RunnerDep, tenant: TenantDep) -> dict[str, Any]:
    """A job's status, progress and result; another tenant's job is simply not found."""
    try:
        info = await runner.get_job_status(job_id, tenant_id=tenant)
    except (JobNotFoundError, ValidationError):
        raise HTTPException(status_code=404, detail="job not found") from None
    return {
        "job_id": str(info.job_id),
        "status": info.status.value,
        "progress": info.progress,
        "runner_type": info.runner_type.value,
        "result": info.result,
        "error": info.error,
    }


@app.get("/health")
async def health(runner: RunnerDep, response: Response) -> dict[str, Any]:
    """Readiness: 200 while jobs can be scheduled, 503 otherwise; each engine and the circuit in the body."""
    report = await runner.is_healthy()
    response.status_code = 200 if report.healthy else 503
    return report.model_dump(mode="json")
