"""A dedicated ``LISTEN`` connection that wakes the worker, reconnecting on loss."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

import psycopg
from psycopg import sql

from ..settings import Settings

log = logging.getLogger("algajobs.listener")
_RECONNECT_MIN = 0.1
_RECONNECT_MAX = 5.0


def channel_name(schema: str) -> str:
    """The notification channel of one schema (matches the SQL triggers)."""
    return f"algajobs_{schema}"


class Listener:
    """Turns notifications into calls: a job queued (by id), work due (now or at an epoch), or a cancel."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_due: Callable[[float | None], None],
        on_cancel: Callable[[UUID], None],
        on_job: Callable[[str, UUID], None],
    ) -> None:
        self._settings = settings
        self._on_due = on_due
        self._on_cancel = on_cancel
        self._on_job = on_job
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled; after each reconnect, wake the worker (it may have missed work)."""
        delay = _RECONNECT_MIN
        while True:
            try:
                await self._listen_once()
            except (psycopg.OperationalError, OSError) as exc:
                if self.connected.is_set():
                    delay = _RECONNECT_MIN  # LISTEN worked, so this is a fresh loss, not a server still down
                log.warning("listen connection lost (%s); reconnecting in %.1fs", exc, delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX)

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self._settings.database_url, autocommit=True)
        async with conn:
            channel = sql.Identifier(channel_name(self._settings.schema_name))
            await conn.execute(sql.SQL("LISTEN {}").format(channel))
            self.connected.set()
            self._on_due(None)
            async for notify in conn.notifies():
                self._dispatch(notify.payload)

    def _dispatch(self, payload: str) -> None:
        if payload.startswith("job:"):  # job:<job_id>:<tenant>, a job due now (see insert_job)
            job_id, _, tenant = payload[4:].partition(":")
            try:
                self._on_job(tenant, UUID(job_id))
            except ValueError:
                self._on_due(None)  # still a job to claim: the usual claim finds it
        elif payload.startswith("cancel:"):
            try:
                self._on_cancel(UUID(payload.removeprefix("cancel:")))
            except ValueError:
                log.warning("ignoring malformed cancel notification %r", payload)
        elif not payload:
            self._on_due(None)
        else:
            try:
                self._on_due(float(payload))
            except ValueError:
                self._on_due(None)
