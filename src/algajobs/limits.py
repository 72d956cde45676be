"""Concurrency caps of one worker process: per job type, per queue and per tenant.

Both engines count the jobs they run here. The PostgreSQL worker asks what
it may claim next (:meth:`Limits.claim_filter`), so a capped type, queue or
tenant is not even fetched. On Temporal the caps are slots of task-queue
workers (a capped type gets a task queue of its own); its activities are
counted here too (:meth:`Limits.counting`), so PostgreSQL claims in the same
process leave room for them (Temporal's slots do not count PostgreSQL's).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from .registry import JobRegistry
from .settings import Settings
from .validation import DEFAULT_QUEUE


def served_queues(registry: JobRegistry, settings: Settings) -> list[str]:
    """The queues a worker of this process serves: ``JOB_QUEUES``, else those its handlers name."""
    if settings.queues:
        return sorted(set(settings.queues))
    return registry.queues or [DEFAULT_QUEUE]


@dataclass(frozen=True)
class ClaimFilter:
    """What the next claim may take: types with room, and the room left where a cap applies."""

    types: list[str]
    type_queues: list[str]
    """The queue of each of ``types`` (the claim reads each type in its queue)."""
    type_room: dict[str, int]
    queue_room: dict[str, int]
    tenant_room: dict[str, int]
    tenant_cap: int | None


class Limits:
    """Counts running jobs by type, queue and tenant against the registry's and settings' caps."""

    def __init__(self, registry: JobRegistry, settings: Settings) -> None:
        self._registry = registry
        self._settings = settings
        self.queues: list[str] = []
        self._types: dict[str, str] = {}
        self._type_caps: dict[str, int] = {}
        self._queue_caps: dict[str, int] = {}
        self._tenant_cap = settings.tenant_concurrency
        self.load()
        self._by_type: Counter[str] = Counter()
        self._by_queue: Counter[str] = Counter()
        self._by_tenant: Counter[str] = Counter()

    def load(self) -> None:
        """Read the served queues and the caps from the registry (again: workers start after handlers register)."""
        registry = self._registry
        self.queues = served_queues(registry, self._settings)
        served = set(self.queues)
        self._types = {d.name: d.queue for d in registry if d.queue in served}
        self._type_caps = {
            d.name: d.concurrency for d in registry if d.concurrency is not None and d.name in self._types
        }
        self._queue_caps = {q: cap for q in self.queues if (cap := registry.queue_limit(q)) is not None}

    @property
    def capped(self) -> bool:
        """True if any cap applies (a finished job may then let a held-back one run)."""
        return bool(self._type_caps or self._queue_caps) or self._tenant_cap is not None

    @property
    def types(self) -> list[str]:
        """The job types this worker serves (registered, in a served queue)."""
        return list(self._types)

    def claim_filter(self) -> ClaimFilter:
        """The types, queues and rooms the next claim must respect."""
        queue_room = {q: cap - self._by_queue[q] for q, cap in self._queue_caps.items()}
        type_room = {t: cap - self._by_type[t] for t, cap in self._type_caps.items()}
        types = [
            name for name, queue in self._types.items() if type_room.get(name, 1) > 0 and queue_room.get(queue, 1) > 0
        ]
        tenant_room: dict[str, int] = {}
        if self._tenant_cap is not None:
            tenant_room = {t: self._tenant_cap - n for t, n in self._by_tenant.items() if n}
        return ClaimFilter(
            types=types,
            type_queues=[self._types[name] for name in types],
            type_room=type_room,
            queue_room=queue_room,
            tenant_room=tenant_room,
            tenant_cap=self._tenant_cap,
        )

    def take(self, name: str, queue: str, tenant: str) -> None:
        """Count a job as running (the claim already respected the caps)."""
        self._by_type[name] += 1
        self._by_queue[queue] += 1
        self._by_tenant[tenant] += 1

    def give_back(self, name: str, queue: str, tenant: str) -> None:
        """Count a job as finished."""
        for counter, key in ((self._by_type, name), (self._by_queue, queue), (self._by_tenant, tenant)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    @contextlib.contextmanager
    def counting(self, name: str, queue: str, tenant: str) -> Iterator[None]:
        """Count a job run elsewhere (a Temporal activity) while inside, so PostgreSQL claims see it."""
        self.take(name, queue, tenant)
        try:
            yield
        finally:
            self.give_back(name, queue, tenant)

    @property
    def capped_types(self) -> dict[str, tuple[str, int]]:
        """Served job types with a concurrency cap: name → (queue, cap)."""
        return {name: (self._types[name], cap) for name, cap in self._type_caps.items()}
