"""The outbox relay: after the caller's transaction commits, hand its pending jobs to an engine.

A job scheduled with ``connection=`` on Temporal is a ``pending`` row written
in the caller's transaction (rolled back: nothing exists). A relay in every
worker process, woken by ``NOTIFY`` at commit and polling as a safety net,
leases pending rows with ``SKIP LOCKED`` (so several relays never work one
row at once) and hands each to the routing policy: started on Temporal (the
deterministic workflow id makes a repeated start a no-op, so a relay that
died mid-batch is simply repeated once its lease expires), or queued on
PostgreSQL when the circuit is open, as a direct call would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any
from uuid import UUID, uuid4

from . import scheduling
from .db import listening
from .encryption import require_plain
from .errors import PayloadDecryptionError, ValidationError
from .registry import JobRegistry
from .routing import Routing
from .settings import Settings
from .store import JobStore

log = logging.getLogger("algajobs.outbox")
BATCH = 100


def relay_channel(schema: str) -> str:
    """The channel a pending row's commit notifies (matches migration 0002)."""
    return f"algajobs_relay_{schema}"


class Relay:
    """Moves committed outbox rows to an engine, a batch at a time."""

    def __init__(self, store: JobStore, routing: Routing, registry: JobRegistry, settings: Settings) -> None:
        self._store = store
        self._routing = routing
        self._registry = registry
        self._settings = settings
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}:relay:{uuid4().hex[:8]}"

    async def run(self) -> None:
        """Relay until cancelled: at each commit notice, and every poll interval regardless."""
        poll = self._settings.poll_interval.total_seconds()
        async with listening(self._settings, relay_channel(self._settings.schema_name)) as conn:
            while True:
                while await self.relay_once() == BATCH:
                    pass  # a full batch: there may be more right away
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        async for _ in conn.notifies(stop_after=1):
                            break

    async def relay_once(self) -> int:
        """Lease one batch of pending rows and hand each to an engine; return how many were leased."""
        # A relay that dies holds its rows for one lease (JOB_LEASE_SECONDS), as a worker holds its jobs.
        rows = await self._store.claim_pending(self.relay_id, lease=self._settings.lease_duration, limit=BATCH)
        await asyncio.gather(*(self._relay_row(row) for row in rows))
        return len(rows)

    async def _relay_row(self, row: dict[str, Any]) -> None:
        tenant, job_id = str(row["tenant"]), UUID(str(row["job_id"]))
        try:
            request = scheduling.prepare(
                self._registry, self._settings, str(row["type"]), require_plain(row["data"]), tenant_id=tenant,
                user_id=row["user_id"], singleton_key=row["singleton_key"], priority=row["priority"],
                run_at=row["run_at"], job_id=job_id,
            )  # fmt: skip
        except (ValidationError, PayloadDecryptionError) as exc:  # no handler or key here: a worker with one relays it
            log.warning("outbox job %s waits for a worker that can relay it: %s", job_id, exc)
            await self._store.release_pending(tenant, job_id, self.relay_id)
            return
        if not await self._routing.relay(request):
            await self._store.release_pending(tenant, job_id, self.relay_id)
