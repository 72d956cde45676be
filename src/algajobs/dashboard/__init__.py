"""The operations dashboard: every job, whichever engine ran it, in one server-rendered page.

Needs the ``dashboard`` extra (``pip install 'algajobs[dashboard]'``)::

    from algajobs.dashboard import create_app
    app = create_app(Settings.load())          # any ASGI server, or mount it

or ``algajobs dashboard --port 8080``. Read-only unless ``JOB_DASHBOARD_TOKEN`` is set.
"""

from __future__ import annotations

from .app import create_app
from .options import DashboardOptions
from .server import serve

__all__ = ["DashboardOptions", "create_app", "serve"]
