"""A worker process's row in ``workers``: which engines, queues and job types it serves.

Health compares it with the jobs that wait, so a type no live worker serves
is named ("no worker for type X in queue Y") instead of failing or silently
waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from uuid import uuid4

from .db import Database
from .enums import RunnerType
from .errors import AlgaJobsError
from .limits import Limits
from .queues import ANNOUNCE_EVERY

log = logging.getLogger("algajobs.presence")


class Presence:
    """Announces this process's workers, renews the announcement while they run, withdraws it on stop."""

    def __init__(self, db: Database, limits: Limits, engines: Callable[[], Sequence[RunnerType]]) -> None:
        self._db = db
        self._limits = limits
        self._engines = engines
        """The engines whose worker takes work right now (a worker waiting for its cluster is not serving)."""
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"

    async def announce(self) -> None:
        """Write (or renew) this process's row; remove it while no engine's worker takes work."""
        engines = [e.value for e in self._engines()]
        if not engines:
            await self.withdraw()
            return
        params = {
            "worker_id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "engines": engines,
            "queues": self._limits.queues,
            "types": self._limits.types,
        }
        await self._db.execute("announce_worker", params)

    async def run(self) -> None:
        """Renew the row every few seconds (sooner just after start, while workers come up)."""
        pause = 0.25
        while True:
            try:
                await self.announce()
            except AlgaJobsError as exc:
                log.warning("could not renew this worker's presence: %s", exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, ANNOUNCE_EVERY.total_seconds())

    async def withdraw(self) -> None:
        """Remove the row (best effort: a row left behind ages out)."""
        with contextlib.suppress(AlgaJobsError):
            await self._db.execute("withdraw_worker", {"worker_id": self.worker_id})
