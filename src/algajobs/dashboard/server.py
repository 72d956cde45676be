"""Serve the dashboard with uvicorn (``algajobs dashboard``)."""

from __future__ import annotations

import uvicorn

from ..registry import JobRegistry
from ..settings import Settings
from .app import create_app
from .options import DashboardOptions


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
