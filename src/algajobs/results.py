"""Waiting for a job's outcome without polling: LISTEN for the statements that finish jobs.

Every statement that ends a job (on either engine) sends one notice on
``algajobs_done_<schema>`` listing the ids it finished. A waiter LISTENs
first, then reads the row (so a job that finished in between is not
missed), and reads it again only when a notice names it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from . import validation
from .db import listening
from .encryption import require_plain
from .enums import JobStatus
from .errors import JobCancelledError, JobFailedError, JobTimeoutError, ValidationError
from .models import JobInfo
from .settings import Settings
from .store import JobStore


def done_channel(schema: str) -> str:
    """The channel job-finishing statements notify (see sql/queries.sql)."""
    return f"algajobs_done_{schema}"


async def wait_for_result(
    store: JobStore,
    settings: Settings,
    job_id: object,
    *,
    tenant_id: object,
    timeout: float,  # noqa: ASYNC109 - the API names it
) -> Any:
    """Return the job's result once it completes; raise its typed failure, or JobTimeoutError after ``timeout`` s.

    A failed job raises :class:`JobFailedError` (message: the job's error), a
    cancelled one :class:`JobCancelledError`; another tenant's job is
    :class:`JobNotFoundError`, as everywhere. A result encrypted with a key this
    process does not hold raises :class:`PayloadDecryptionError`.
    """
    tenant, job = validation.tenant_id(tenant_id), validation.job_id(job_id)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 86_400:
        raise ValidationError("timeout must be a number of seconds in (0, 86400]")
    wanted = str(job)
    try:
        async with asyncio.timeout(timeout), listening(settings, done_channel(settings.schema_name)) as conn:
            info = await store.get_job(job, tenant_id=tenant)
            while not info.status.is_finished:
                async for notice in conn.notifies():
                    if wanted in notice.payload.split(","):
                        break
                info = await store.get_job(job, tenant_id=tenant)
    except TimeoutError:
        raise JobTimeoutError(f"job {job} did not finish within {timeout:g}s") from None
    return _outcome(info, job)


def _outcome(info: JobInfo, job: UUID) -> Any:
    match info.status:
        case JobStatus.COMPLETED:
            return require_plain(info.result)
        case JobStatus.CANCELLED:
            raise JobCancelledError(info.error or f"job {job} was cancelled")
        case _:
            raise JobFailedError(info.error or f"job {job} failed")
