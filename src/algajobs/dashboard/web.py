"""What every page and action shares: the app's state, the operator check and rendering with CSRF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .. import validation
from ..settings import Settings
from . import security
from .backend import Backend
from .options import DashboardOptions

# Notices an action redirects with; fixed texts, so no query parameter reaches the page as markup.
NOTICES = {
    "retried": "The job was queued again on PostgreSQL.",
    "cancelled": "The job was cancelled.",
    "finished": "The job had already finished; nothing was cancelled.",
    "signed-in": "Signed in as operator.",
    "signed-out": "Signed out.",
    "bad-token": "That is not the operator token.",
    "bulk": "Failed jobs matching the filters were queued again.",
    "paused": "The queue was paused: nothing more is claimed from it, on either engine, until it is resumed.",
    "already-paused": "That queue was paused already; nothing changed.",
    "resumed": "The queue was resumed: its waiting jobs run again.",
    "not-paused": "That queue was not paused; nothing changed.",
}


@dataclass(frozen=True)
class State:
    """The dashboard's configuration and connections, kept on ``app.state.dashboard``."""

    settings: Settings
    options: DashboardOptions
    backend: Backend
    templates: Jinja2Templates

    @classmethod
    def of(cls, request: Request) -> State:
        """The state of the dashboard app serving ``request``."""
        state: State = request.app.state.dashboard
        return state


def scoped_tenant(request: Request) -> str | None:
    """The tenant the pages show: the pinned one, else ``?tenant=``, else every tenant (None)."""
    pinned = State.of(request).options.tenant
    if pinned is not None:
        return pinned
    given = request.query_params.get("tenant", "").strip()
    return validation.tenant_id(given) if given else None


def is_operator(request: Request) -> bool:
    """True when an operator token is configured and this request carries a session signed with it."""
    options = State.of(request).options
    if options.read_only or options.token is None:
        return False
    return security.session_ok(request.cookies.get(security.SESSION_COOKIE), options.token.get_secret_value())


def cookie_path(request: Request) -> str:
    """The path the dashboard's cookies are scoped to: its mount point."""
    root: str = request.scope.get("root_path", "")
    return root or "/"


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    """Render ``template`` with the shared context; set the CSRF cookie on first visit."""
    state = State.of(request)
    csrf = request.cookies.get(security.CSRF_COOKIE) or security.new_csrf_token()
    shared = {
        "options": state.options,
        "read_only": state.options.read_only,
        "operator": is_operator(request),
        "csrf": csrf,
        "csrf_field": security.CSRF_FIELD,
        "pinned_tenant": state.options.tenant,
        "notice": request.query_params.get("notice", ""),
        "notices": NOTICES,
        "count": request.query_params.get("count", ""),
    }
    response = state.templates.TemplateResponse(request, template, shared | context, status_code=status_code)
    if request.cookies.get(security.CSRF_COOKIE) != csrf:
        response.set_cookie(
            security.CSRF_COOKIE,
            csrf,
            path=cookie_path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response
