"""The operator's actions: sign in and out, cancel, retry, bulk retry, pause and resume a queue. POST only.

Every action is refused with 403 unless the dashboard has an operator token
and the form's CSRF field repeats the CSRF cookie; all but signing in and out
also need a signed-in operator. Pausing and resuming are refused (403) on a
dashboard pinned to one tenant: a queue is shared by every tenant. Each
answers with a redirect to a page (303).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import validation
from ..enums import JobStatus
from ..errors import JobNotFoundError, JobStateError
from . import security
from .filters import parse_filter
from .web import State, cookie_path, is_operator


async def _checked_form(request: Request, *, operator: bool = True) -> FormData:
    """The form of a permitted POST; HTTPException(403) otherwise."""
    options = State.of(request).options
    if options.read_only:
        raise HTTPException(403, "the dashboard is read-only: JOB_DASHBOARD_TOKEN is not set")
    form = await request.form()
    field = form.get(security.CSRF_FIELD)
    if not security.csrf_ok(request.cookies.get(security.CSRF_COOKIE), field if isinstance(field, str) else None):
        raise HTTPException(403, "missing or mismatched CSRF token; reload the page and try again")
    if operator and not is_operator(request):
        raise HTTPException(403, "sign in with the operator token first")
    return form


def _redirect(request: Request, name: str, notice: str, **params: Any) -> RedirectResponse:
    query = {key: value for key, value in params.pop("query", {}).items() if value}
    url = request.url_for(name, **params).include_query_params(notice=notice, **query)
    return RedirectResponse(str(url), status_code=303)


async def login(request: Request) -> Response:
    """Start an operator session when the form carries the operator token."""
    form = await _checked_form(request, operator=False)
    token = State.of(request).options.token
    given = form.get("token")
    if token is None or not security.token_ok(given if isinstance(given, str) else None, token.get_secret_value()):
        return _redirect(request, "overview", "bad-token")
    response = _redirect(request, "overview", "signed-in")
    response.set_cookie(
        security.SESSION_COOKIE,
        security.new_session(token.get_secret_value()),
        max_age=security.SESSION_SECONDS,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """End the operator session."""
    await _checked_form(request, operator=False)
    response = _redirect(request, "overview", "signed-out")
    response.delete_cookie(security.SESSION_COOKIE, path=cookie_path(request))
    return response


def _job_key(request: Request) -> tuple[str, str]:
    tenant: str = request.path_params["tenant"]
    pinned = State.of(request).options.tenant
    if pinned is not None and tenant != pinned:
        raise JobNotFoundError("job not found")
    return tenant, request.path_params["job_id"]


async def cancel(request: Request) -> Response:
    """Cancel one job (queued at once, running cooperatively, recurring removed)."""
    await _checked_form(request)
    tenant, job_id = _job_key(request)
    runner = (await State.of(request).backend.get()).runner
    done = await runner.cancel_job(job_id, tenant_id=tenant, cancelled_by="dashboard")
    return _redirect(request, "job", "cancelled" if done else "finished", tenant=tenant, job_id=job_id)


async def retry(request: Request) -> Response:
    """Queue a failed or cancelled job again on PostgreSQL with fresh attempts."""
    await _checked_form(request)
    tenant, job_id = _job_key(request)
    runner = (await State.of(request).backend.get()).runner
    await runner.retry_job(job_id, tenant_id=tenant)
    return _redirect(request, "job", "retried", tenant=tenant, job_id=job_id)


async def bulk_retry(request: Request) -> Response:
    """Retry every failed job the form's filters select (up to JOB_DASHBOARD_BULK_LIMIT, newest first)."""
    form = await _checked_form(request)
    state = State.of(request)
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    where = replace(parse_filter(fields).pinned(state.options.tenant), status=JobStatus.FAILED)
    opened = await state.backend.get()
    page = await opened.reads.jobs(where, after=None, limit=state.options.bulk_retry_limit)
    retried = 0
    for row in page.rows:
        try:
            await opened.runner.retry_job(row["job_id"], tenant_id=row["tenant"])
        except (JobStateError, JobNotFoundError):
            continue  # changed state since the read, or a recurring tick: not retryable
        retried += 1
    shown = replace(where, status=None).query()  # the retried jobs are queued now, no longer failed
    return _redirect(request, "jobs", "bulk", query={**shown, "count": str(retried)})


def _shared_queues_allowed(request: Request) -> None:
    """HTTPException(403) on a tenant-pinned dashboard, which must not stop other tenants' work."""
    pinned = State.of(request).options.tenant
    if pinned is not None:
        message = f"queues are shared by every tenant: a dashboard pinned to {pinned!r} cannot pause or resume them"
        raise HTTPException(403, message)


def _form_text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


async def pause_queue(request: Request) -> Response:
    """Pause the form's queue on both engines, with an optional reason; its jobs wait until resumed."""
    _shared_queues_allowed(request)
    form = await _checked_form(request)
    queue = validation.queue_name(_form_text(form, "queue") or "")
    runner = (await State.of(request).backend.get()).runner
    done = await runner.pause_queue(queue, paused_by="dashboard", reason=_form_text(form, "reason"))
    return _redirect(request, "queues", "paused" if done else "already-paused")


async def resume_queue(request: Request) -> Response:
    """Resume the form's queue: its waiting jobs run again."""
    _shared_queues_allowed(request)
    form = await _checked_form(request)
    queue = validation.queue_name(_form_text(form, "queue") or "")
    runner = (await State.of(request).backend.get()).runner
    done = await runner.resume_queue(queue)
    return _redirect(request, "queues", "resumed" if done else "not-paused")
