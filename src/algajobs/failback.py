"""Failback: recurring jobs registered on PostgreSQL during an outage move to Temporal once it answers.

Nobody has to register them again: a failover worker looks every
``JOB_CIRCUIT_COOL_DOWN`` while the circuit is closed. Temporal adopts the
schedule first (deterministic id, so a Schedule a late answer left behind is
updated, not doubled), then the PostgreSQL twin is retired: one owner at
every moment.
"""

from __future__ import annotations

import asyncio
import logging

from . import scheduling
from .circuit import CircuitState
from .encryption import require_plain
from .errors import PayloadDecryptionError, ValidationError
from .registry import JobRegistry
from .routing import Failover
from .schedule_spec import ScheduleSpec
from .settings import Settings
from .store import JobStore

log = logging.getLogger("algajobs.failback")


class Failback:
    """Moves outage-time PostgreSQL schedules back to Temporal."""

    def __init__(self, store: JobStore, routing: Failover, registry: JobRegistry, settings: Settings) -> None:
        self._store = store
        self._routing = routing
        self._registry = registry
        self._settings = settings

    async def run(self) -> None:
        """Look every cool-down while the circuit is closed, until cancelled."""
        pause = self._settings.circuit_cool_down.total_seconds()
        while True:
            await asyncio.sleep(pause)
            if self._routing.circuit_state is CircuitState.CLOSED:
                await self.move_schedules()

    async def move_schedules(self) -> int:
        """Move what can be moved now; return how many schedules moved."""
        moved = 0
        for row in await self._store.live_postgres_schedules():
            try:
                spec = ScheduleSpec.parse(row["spec"])
                request = scheduling.prepare(
                    self._registry, self._settings, row["type"], require_plain(row["data"]), tenant_id=row["tenant"],
                    user_id=row["user_id"], singleton_key=row["singleton_key"] or None, priority=row["priority"],
                )  # fmt: skip
            except (ValidationError, PayloadDecryptionError) as exc:  # a handler (or key) this process lacks
                log.info("recurring %s of %s stays on PostgreSQL: %s", row["type"], row["tenant"], exc)
                continue
            if not await self._routing.fail_back(request, spec):
                break  # Temporal is not answering: try again next round
            moved += 1
        return moved
