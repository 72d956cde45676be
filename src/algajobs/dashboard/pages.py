"""The read-only pages: overview, job list, job page, recurring schedules, queues."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response

from ..enums import JobStatus, RunnerType
from ..errors import AlgaJobsError, JobNotFoundError
from ..models import HealthReport
from ..queues import ANNOUNCE_EVERY, WORKER_ALIVE
from .filters import parse_cursor, parse_filter
from .present import pretty_json, temporal_schedule_url, temporal_workflow_url, throughput_bars
from .web import State, render, scoped_tenant


async def overview(request: Request) -> Response:
    """Counts by status and engine, throughput over the last hour, engine health and the circuit."""
    return render(request, "overview.html", await _live(request))


async def live_fragment(request: Request) -> Response:
    """The overview's live part alone, for its periodic refresh."""
    return render(request, "_live.html", await _live(request))


async def _live(request: Request) -> dict[str, object]:
    state = State.of(request)
    tenant = scoped_tenant(request)
    opened = await state.backend.get()
    counts = await opened.reads.counts(tenant)
    bars, peak, completed, failed = throughput_bars(await opened.reads.throughput(tenant))
    health: HealthReport | None
    try:
        health = await opened.runner.is_healthy()
        health_error = None
    except AlgaJobsError as exc:
        health, health_error = None, str(exc)
    return {
        "tenant": tenant,
        "counts": counts,
        "statuses": list(JobStatus),
        "engines": list(RunnerType),
        "health": health,
        "health_error": health_error,
        "mode": opened.runner.mode,
        "bars": bars,
        "peak": peak,
        "completed_hour": completed,
        "failed_hour": failed,
    }


async def job_list(request: Request) -> Response:
    """Jobs matching the filters, newest first, one keyset page at a time."""
    state = State.of(request)
    where = parse_filter(request.query_params).pinned(state.options.tenant)
    after = parse_cursor(request.query_params)
    opened = await state.backend.get()
    page = await opened.reads.jobs(where, after=after, limit=state.options.page_size)
    return render(
        request,
        "jobs.html",
        {
            "where": where,
            "filter_query": where.query(),
            "page": page,
            "first_page": after is None,
            "statuses": list(JobStatus),
            "engines": list(RunnerType),
            "bulk_allowed": where.status in (None, JobStatus.FAILED),
            "bulk_filter": replace(where, status=JobStatus.FAILED).query(),
        },
    )


async def job_page(request: Request) -> Response:
    """One job: payload, progress, attempts, error, steps and its Temporal workflow."""
    state = State.of(request)
    tenant = request.path_params["tenant"]
    if state.options.tenant is not None and tenant != state.options.tenant:
        raise JobNotFoundError("job not found")
    opened = await state.backend.get()
    job = await opened.runner.get_job_status(request.path_params["job_id"], tenant_id=tenant)
    details = await opened.runner.get_job_details(job.job_id, tenant_id=tenant)
    queue = await opened.reads.job_queue(tenant, job.job_id)
    namespace = state.settings.temporal_namespace
    return render(
        request,
        "job.html",
        {
            "job": job,
            "queue": queue,
            "details": details,
            "payload": pretty_json(job.data),
            "result": None if job.result is None else pretty_json(job.result),
            "metadata": pretty_json(job.metadata),
            "pretty": pretty_json,
            "workflow_url": temporal_workflow_url(state.options.temporal_ui_url, namespace, job),
            "can_cancel": not job.status.is_finished,
            "can_retry": job.status in (JobStatus.FAILED, JobStatus.CANCELLED) and "schedule" not in job.metadata,
        },
    )


async def schedules(request: Request) -> Response:
    """Live recurring jobs on either engine."""
    state = State.of(request)
    opened = await state.backend.get()
    rows = await opened.reads.schedules(scoped_tenant(request))
    base, namespace = state.options.temporal_ui_url, state.settings.temporal_namespace
    for row in rows:
        temporal = row["runner_type"] == RunnerType.TEMPORAL
        row["temporal_url"] = temporal_schedule_url(base, namespace, row["external_id"]) if temporal else None
    return render(request, "schedules.html", {"schedules": rows})


async def queues(request: Request) -> Response:
    """Known queues with their pause, queued jobs and unserved types; the live workers.

    A tenant-pinned dashboard shows only which queues are paused: queues, their
    workers and the job types waiting in them are shared by every tenant.
    """
    state = State.of(request)
    opened = await state.backend.get()
    if state.options.tenant is not None:
        return render(request, "queues.html", {"paused": await opened.reads.paused_queues(), "view": None})
    return render(
        request,
        "queues.html",
        {
            "view": await opened.reads.queues(),
            "paused": None,
            "announce_seconds": int(ANNOUNCE_EVERY.total_seconds()),
            "alive_seconds": int(WORKER_ALIVE.total_seconds()),
        },
    )
