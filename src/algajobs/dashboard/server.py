"""Serve the dashboard with uvicorn: alone (``algajobs dashboard``) or beside a worker (``algajobs dev``)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp

from ..registry import JobRegistry
from ..settings import Settings
from .app import create_app
from .options import DashboardOptions

_SHUTDOWN_GRACE = 5  # seconds open requests get to finish once the host command stops


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    registry: JobRegistry | None = None,
    options: DashboardOptions | None = None,
) -> None:
    """Serve the dashboard on ``host:port`` until interrupted (blocks)."""
    app = create_app(settings, registry, options=options)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


class _GuestServer(uvicorn.Server):
    """A uvicorn server running inside another command's event loop, which owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no handlers: the host command stops the server (uvicorn's own would re-raise the signal)."""
        yield


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp, sock: socket.socket, *, start_timeout: float = 10.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Serve ``app`` on the bound ``sock`` in the running event loop until the block exits.

    Yields the server's task once it accepts connections, so the caller can
    notice if it dies. On exit the server stops accepting, gives open requests
    a few seconds, runs the app's lifespan shutdown and closes ``sock``.
    Access logs are off: a dashboard page refreshing every few seconds would
    drown the host command's own output.
    """
    config = uvicorn.Config(
        app,
        log_config=None,  # keep the host's logging setup
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE,
    )
    server = _GuestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="algajobs-dashboard")
    try:
        async with asyncio.timeout(start_timeout):
            while not server.started:
                if task.done():
                    await task  # raises what stopped it
                    raise RuntimeError("the dashboard server stopped while starting")
                await asyncio.sleep(0.02)
        yield task
    finally:
        server.should_exit = True
        await asyncio.wait({task}, timeout=_SHUTDOWN_GRACE + 5)
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled():
            task.exception()  # seen by the caller already, if it failed; not "never retrieved"
