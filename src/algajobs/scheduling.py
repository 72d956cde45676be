"""Turning a ``schedule_*`` call into a validated request, before any write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from . import validation
from .errors import UnknownJobError, ValidationError
from .registry import JobDefinition, JobRegistry
from .settings import Settings

_PRIORITY_BOUND = 1_000_000


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
    tenant = validation.tenant_id(tenant_id)
    if not isinstance(name, str) or name not in registry:  # a list would fail the lookup with TypeError
        raise UnknownJobError(f"no handler registered for job {validation.preview(name)}")
    definition = registry.get(name)
    values = definition.validate_payload(data)
    data_json = validation.encode_payload(values, settings.max_payload_bytes)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > _PRIORITY_BOUND:
        raise ValidationError(f"priority must be an int within ±{_PRIORITY_BOUND}")
    return JobRequest(
        job_id=uuid4() if job_id is None else validation.job_id(job_id),
        tenant_id=tenant,
        definition=definition,
        data=values,
        data_json=data_json,
        user_id=validation.optional_text(user_id, "user_id"),
        singleton_key=validation.optional_text(singleton_key, "singleton_key"),
        priority=priority,
        run_at=None if run_at is None else validation.run_at(run_at),
        fresh_id=job_id is None,
    )


def prepare_batch(
    registry: JobRegistry,
    settings: Settings,
    name: str,
    payloads: list[Any],
    *,
    tenant_id: object,
    user_id: object = None,
    priority: object = 0,
) -> list[JobRequest]:
    """Validate a batch of one name: the shared arguments once, each payload on its own."""
    first = prepare(registry, settings, name, payloads[0], tenant_id=tenant_id, user_id=user_id, priority=priority)
    requests = [first]
    for data in payloads[1:]:
        values = first.definition.validate_payload(data)
        requests.append(
            JobRequest(
                job_id=uuid4(),
                tenant_id=first.tenant_id,
                definition=first.definition,
                data=values,
                data_json=validation.encode_payload(values, settings.max_payload_bytes),
                user_id=first.user_id,
                singleton_key=None,
                priority=first.priority,
                run_at=None,
            )
        )
    return requests
