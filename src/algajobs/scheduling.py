"""Turning a ``schedule_*`` call into a validated request, before any write."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from . import validation
from .errors import UnknownJobError, ValidationError
from .job_ids import new_job_id, new_job_ids
from .registry import JobDefinition, JobRegistry
from .settings import Settings

_PRIORITY_BOUND = 1_000_000
_CHECKED = sys.maxsize  # payloads of a batch were checked against the limit already


@dataclass(frozen=True)
class JobRequest:
    """A job that passed every input check; engines only ever see these."""

    job_id: UUID
    tenant_id: str
    definition: JobDefinition
    data: Any
    """Payload as JSON-ready values (validated against the handler's model)."""
    data_json: str
    user_id: str | None
    singleton_key: str | None
    priority: int
    run_at: datetime | None
    fresh_id: bool = True
    """The id was generated for this call, so no earlier row can hold it."""

    @property
    def name(self) -> str:
        """The registered job name."""
        return self.definition.name

    @property
    def keyed(self) -> bool:
        """A caller-given id or a singleton key: an existing row may decide that nothing starts."""
        return not self.fresh_id or self.singleton_key is not None


def prepare(
    registry: JobRegistry,
    settings: Settings,
    name: str,
    data: Any,
    *,
    tenant_id: object,
    user_id: object = None,
    singleton_key: object = None,
    priority: object = 0,
    run_at: object = None,
    job_id: object = None,
) -> JobRequest:
    """Validate every argument of a ``schedule_*`` call; raise a ValidationError subclass."""
    tenant, definition = _target(registry, name, tenant_id)
    values = definition.validate_payload(data)
    data_json = validation.encode_payload(values, settings.max_payload_bytes)
    return JobRequest(
        job_id=new_job_id() if job_id is None else validation.job_id(job_id),
        tenant_id=tenant,
        definition=definition,
        data=values,
        data_json=data_json,
        user_id=validation.optional_text(user_id, "user_id"),
        singleton_key=validation.optional_text(singleton_key, "singleton_key"),
        priority=_priority(priority),
        run_at=None if run_at is None else validation.run_at(run_at),
        fresh_id=job_id is None,
    )


@dataclass(frozen=True)
class JobBatch:
    """Fresh jobs of one name for one tenant, user and priority (``schedule_jobs``), validated together.

    Kept whole rather than as one request per job: the PostgreSQL engine
    writes it as one statement from the ids and the payloads' one JSON array.
    """

    tenant_id: str
    definition: JobDefinition
    user_id: str | None
    priority: int
    job_ids: list[UUID]
    values: list[Any]
    """Each payload as JSON-ready values, in order."""
    payloads_json: str
    """Every payload as one JSON array, each within the payload size limit."""

    @property
    def name(self) -> str:
        """The registered job name."""
        return self.definition.name

    def __len__(self) -> int:
        return len(self.job_ids)

    @functools.cached_property
    def payload_texts(self) -> list[str]:
        """Each payload's JSON on its own (to seal one by one, or to split a batch too large for a statement)."""
        return [validation.encode_payload(values, _CHECKED) for values in self.values]

    @functools.cached_property
    def requests(self) -> list[JobRequest]:
        """The batch as one request per job, for an engine that starts jobs one at a time."""
        return [
            JobRequest(
                job_id=job_id,
                tenant_id=self.tenant_id,
                definition=self.definition,
                data=values,
                data_json=text,
                user_id=self.user_id,
                singleton_key=None,
                priority=self.priority,
                run_at=None,
            )
            for job_id, values, text in zip(self.job_ids, self.values, self.payload_texts, strict=True)
        ]


def prepare_batch(
    registry: JobRegistry,
    settings: Settings,
    name: str,
    payloads: list[Any],
    *,
    tenant_id: object,
    user_id: object = None,
    priority: object = 0,
) -> JobBatch:
    """Validate a batch of one name: the shared arguments once, the payloads in one pass."""
    tenant, definition = _target(registry, name, tenant_id)
    user = validation.optional_text(user_id, "user_id")
    level = _priority(priority)
    values = definition.validate_payloads(payloads)
    return JobBatch(
        tenant_id=tenant,
        definition=definition,
        user_id=user,
        priority=level,
        job_ids=new_job_ids(len(values)),
        values=values,
        payloads_json=validation.encode_payloads(values, settings.max_payload_bytes),
    )


def _target(registry: JobRegistry, name: object, tenant_id: object) -> tuple[str, JobDefinition]:
    tenant = validation.tenant_id(tenant_id)
    if not isinstance(name, str) or name not in registry:  # a list would fail the lookup with TypeError
        raise UnknownJobError(f"no handler registered for job {validation.preview(name)}")
    return tenant, registry.get(name)


def _priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > _PRIORITY_BOUND:
        raise ValidationError(f"priority must be an int within ±{_PRIORITY_BOUND}")
    return priority
