"""``create_app``: the dashboard as an ASGI app, to serve alone or mount in a service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import (
    AlgaJobsError,
    EngineUnavailableError,
    InvalidJobIdError,
    JobNotFoundError,
    JobStateError,
    ValidationError,
)
from ..registry import JobRegistry
from ..settings import Settings
from . import actions, pages, present
from .backend import Backend
from .options import DashboardOptions
from .web import State, render

_HERE = Path(str(resources.files(__package__)))


def create_app(
    settings: Settings | None = None,
    registry: JobRegistry | None = None,
    *,
    options: DashboardOptions | None = None,
) -> Starlette:
    """The dashboard over ``settings``' database: an ASGI app (Starlette).

    ``registry`` is only needed for the runner's handlers (none run here);
    ``options`` default to the ``JOB_DASHBOARD_*`` environment. Mount it with
    ``Mount("/jobs-admin", app=create_app(settings))``; it opens its
    connections on first use and closes them at its lifespan's end.
    """
    settings = settings or Settings.load()
    options = options or DashboardOptions.load()
    backend = Backend(settings, registry if registry is not None else JobRegistry())

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backend.close()

    routes = [
        Route("/", pages.overview, name="overview"),
        Route("/live", pages.live_fragment, name="live"),
        Route("/jobs", pages.job_list, name="jobs"),
        Route("/jobs/retry-failed", actions.bulk_retry, methods=["POST"], name="bulk_retry"),
        Route("/jobs/{tenant}/{job_id}", pages.job_page, name="job"),
        Route("/jobs/{tenant}/{job_id}/cancel", actions.cancel, methods=["POST"], name="cancel"),
        Route("/jobs/{tenant}/{job_id}/retry", actions.retry, methods=["POST"], name="retry"),
        Route("/schedules", pages.schedules, name="schedules"),
        Route("/queues", pages.queues, name="queues"),
        Route("/queues/pause", actions.pause_queue, methods=["POST"], name="pause_queue"),
        Route("/queues/resume", actions.resume_queue, methods=["POST"], name="resume_queue"),
        Route("/login", actions.login, methods=["POST"], name="login"),
        Route("/logout", actions.logout, methods=["POST"], name="logout"),
        Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={AlgaJobsError: _error_page, HTTPException: _error_page},
    )
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True)
    env.filters["utc"] = present.utc
    templates = Jinja2Templates(env=env)
    app.state.dashboard = State(settings=settings, options=options, backend=backend, templates=templates)
    return app


_STATUS: tuple[tuple[type[AlgaJobsError], int], ...] = (
    (JobNotFoundError, 404),
    (InvalidJobIdError, 404),
    (ValidationError, 400),
    (JobStateError, 409),
    (EngineUnavailableError, 503),
)


async def _error_page(request: Request, exc: Exception) -> Response:
    """An error as a page with its status: library errors by kind, HTTP errors as raised."""
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, exc.detail
    else:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        message = str(exc)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)
