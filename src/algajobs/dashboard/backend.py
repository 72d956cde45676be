"""What the dashboard reads and acts through: a runner (actions, health) and its own pool (reads).

Opened on first use, so the app works mounted inside another ASGI app whose
lifespan never reaches it; closed by the dashboard's own lifespan when it has one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..db import Database
from ..factory import create_runner
from ..registry import JobRegistry
from ..runner import Runner
from ..settings import Settings
from .reads import DashboardReads


@dataclass(frozen=True)
class Opened:
    """An open runner and the reads over the dashboard's pool."""

    runner: Runner
    reads: DashboardReads


class Backend:
    """Opens the runner and pool once, under a lock; closes them on :meth:`close`."""

    def __init__(self, settings: Settings, registry: JobRegistry) -> None:
        self._settings = settings
        self._registry = registry
        self._lock = asyncio.Lock()
        self._opened: Opened | None = None
        self._runner: Runner | None = None
        self._db: Database | None = None

    async def get(self) -> Opened:
        """The open runner and reads (migrating the schema on the first call)."""
        if self._opened is not None:
            return self._opened
        async with self._lock:
            if self._opened is None:
                runner = create_runner(self._settings, self._registry)
                await runner.__aenter__()
                try:
                    db = await Database.open(self._settings)
                except BaseException:
                    await runner.__aexit__(None, None, None)
                    raise
                self._runner, self._db = runner, db
                self._opened = Opened(runner=runner, reads=DashboardReads(db))
            return self._opened

    async def close(self) -> None:
        """Close the pool and the runner, if they were opened."""
        async with self._lock:
            runner, db = self._runner, self._db
            self._opened = self._runner = self._db = None
            try:
                if db is not None:
                    await db.close()
            finally:
                if runner is not None:
                    await runner.__aexit__(None, None, None)
