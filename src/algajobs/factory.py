"""``create_runner``: the composition root that picks an engine from settings."""

from __future__ import annotations

from .enums import RunnerType
from .fallback import PostgresRunner
from .registry import JobRegistry
from .settings import Settings
from .temporal.runner import TemporalRunner


def create_runner(
    settings: Settings | None = None, registry: JobRegistry | None = None
) -> PostgresRunner | TemporalRunner:
    """Return the runner ``settings`` ask for (default: read from the environment).

    The runner is an async context manager; ``start()`` begins processing.
    """
    settings = settings or Settings.load()
    registry = registry if registry is not None else JobRegistry()
    if settings.runner_type is RunnerType.POSTGRES:
        return PostgresRunner(settings, registry)
    return TemporalRunner(settings, registry)
