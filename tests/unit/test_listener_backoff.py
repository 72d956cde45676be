"""The listener's reconnect backoff: doubling while the server stays down, small again after a good connection."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from algajobs import Settings
from algajobs.fallback.listener import Listener

real_sleep = asyncio.sleep


class SeenEnoughError(Exception):
    """Ends the listener's endless loop once the test has seen enough sleeps."""


async def test_backoff_resets_after_a_connection_that_listened(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals double the wait; a connection whose LISTEN succeeded, once lost, is retried after the minimum wait."""
    script = iter(["refused", "refused", "refused", "listened", "refused", "refused"])
    delays: list[float] = []
    listener = Listener(
        Settings.load(), on_due=lambda _epoch: None, on_cancel=lambda _job_id: None, on_job=lambda _t, _j: None
    )

    async def listen_once() -> None:
        if next(script) == "listened":
            listener.connected.set()  # what _listen_once does once LISTEN has succeeded
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        raise psycopg.OperationalError("connection refused")

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 6:
            raise SeenEnoughError
        await real_sleep(0)

    monkeypatch.setattr(listener, "_listen_once", listen_once)
    monkeypatch.setattr(asyncio, "sleep", sleep)  # the listener calls asyncio.sleep; undone when the test ends
    with pytest.raises(SeenEnoughError):
        await listener.run()
    assert delays == [0.1, 0.2, 0.4, 0.1, 0.2, 0.4]
    assert not listener.connected.is_set()
