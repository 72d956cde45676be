"""Names and inputs on the Temporal wire, derived from a validated request."""

from __future__ import annotations

import uuid

from temporalio.common import Priority, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from ..scheduling import JobRequest
from ..telemetry import carrier
from ..workflows.contracts import GenericJobInput, RetrySpec

_SCHEDULE_NAMESPACE = uuid.UUID("0e7d0b8c-4c57-4d8e-8d1e-2f9a3f1c6b55")

TENANT_ATTRIBUTE = SearchAttributeKey.for_keyword("AlgaTenant")
"""The job's tenant id, on every workflow algajobs starts (``TEMPORAL_SEARCH_ATTRIBUTES``)."""
JOB_NAME_ATTRIBUTE = SearchAttributeKey.for_keyword("AlgaJobName")
"""The job's registered name."""
JOB_ID_ATTRIBUTE = SearchAttributeKey.for_keyword("AlgaJobId")
"""The job id (a recurring job's runs carry its schedule row's id)."""
QUEUE_ATTRIBUTE = SearchAttributeKey.for_keyword("AlgaQueue")
"""The queue the job type belongs to."""
SEARCH_ATTRIBUTES = (TENANT_ATTRIBUTE, JOB_NAME_ATTRIBUTE, JOB_ID_ATTRIBUTE, QUEUE_ATTRIBUTE)
"""Every search attribute algajobs sets; each must be registered (type Keyword) in the namespace."""


def workflow_id_for(job_id: uuid.UUID) -> str:
    """The workflow id of a job: derived from its id, so a job can never start twice."""
    return f"alga-job-{job_id}"


def schedule_id_for(tenant_id: str, name: str, singleton_key: str | None) -> str:
    """The Temporal Schedule id of a recurring job (one per tenant, name and key)."""
    return f"alga-schedule-{tenant_id}-{name}-{singleton_key or 'default'}"


def schedule_row_id(schedule_id: str) -> uuid.UUID:
    """The job id of a Temporal Schedule's 'active' row, derived from the schedule id."""
    return uuid.uuid5(_SCHEDULE_NAMESPACE, schedule_id)


def temporal_priority(priority: int, tenant_id: str) -> Priority:
    """Our priority (higher runs first) as Temporal's task-queue priority, tenant as its fairness key.

    Temporal has priority keys 1 (first) to 5 (last), 3 by default: 0 maps to 3,
    1..99 to 2, 100 and up to 1, -1..-99 to 4, -100 and below to 5. Within a
    key, a server with fairness enabled shares task dispatch between tenants.
    """
    if priority >= 100:
        key = 1
    elif priority > 0:
        key = 2
    elif priority == 0:
        key = 3
    elif priority > -100:
        key = 4
    else:
        key = 5
    return Priority(priority_key=key, fairness_key=tenant_id)


def search_attributes(request: JobRequest, job_id: uuid.UUID) -> TypedSearchAttributes:
    """The search attributes of the job's workflow: tenant, job name, job id and queue."""
    values = (request.tenant_id, request.name, str(job_id), request.definition.queue)
    return TypedSearchAttributes([SearchAttributePair(k, v) for k, v in zip(SEARCH_ATTRIBUTES, values, strict=True)])


def search_attribute_flags() -> list[str]:
    """The ``temporal server start-dev`` arguments that register :data:`SEARCH_ATTRIBUTES`."""
    return [arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")]


def workflow_input(request: JobRequest, *, schedule_id: str | None = None) -> GenericJobInput:
    """The ``genericJobWorkflow`` input for a validated request."""
    return GenericJobInput(
        job_id=None if schedule_id else str(request.job_id),
        job_name=request.name,
        tenant_id=request.tenant_id,
        data=request.data,
        user_id=request.user_id,
        run_at=None if schedule_id else request.run_at,
        retry=RetrySpec.of(request.definition.retry),
        timeout_seconds=request.definition.timeout.total_seconds(),
        schedule_id=schedule_id,
        trace_context=carrier(),
        row_written=schedule_id is None,
    )
