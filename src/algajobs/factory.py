"""``create_runner``: the composition root that picks an engine from settings."""

from __future__ import annotations

from .enums import RunnerType
from .fallback import PostgresRunner
from .registry import JobRegistry
from .router import FailoverRunner
from .settings import Settings
from .temporal.runner import TemporalRunner

AnyRunner = FailoverRunner | PostgresRunner | TemporalRunner


def create_runner(settings: Settings | None = None, registry: JobRegistry | None = None) -> AnyRunner:
    """Return the runner ``settings`` ask for (default: read from the environment).

    ``temporal`` with fallback (the default) gives a :class:`FailoverRunner`;
    ``temporal`` without fallback a :class:`TemporalRunner`; ``postgres`` a
    :class:`PostgresRunner`. Runners are async context managers; ``start()``
    begins processing.
    """
    settings = settings or Settings.load()
    registry = registry if registry is not None else JobRegistry()
    if settings.runner_type is RunnerType.POSTGRES:
        return PostgresRunner(settings, registry)
    if settings.fallback_to_postgres:
        return FailoverRunner(settings, registry)
    return TemporalRunner(settings, registry)
