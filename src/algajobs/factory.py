"""``create_runner``: the composition root that picks an engine from settings."""

from __future__ import annotations

from .enums import RunnerType
from .errors import ConfigurationError
from .fallback import PostgresRunner
from .registry import JobRegistry
from .settings import Settings


def create_runner(settings: Settings | None = None, registry: JobRegistry | None = None) -> PostgresRunner:
    """Return the runner ``settings`` ask for (default: read from the environment).

    The runner is an async context manager; ``start()`` begins processing.
    """
    settings = settings or Settings.load()
    registry = registry if registry is not None else JobRegistry()
    if settings.runner_type is RunnerType.POSTGRES:
        return PostgresRunner(settings, registry)
    raise ConfigurationError(
        "JOB_RUNNER_TYPE=temporal: this release ships the PostgreSQL engine only; "
        "set JOB_RUNNER_TYPE=postgres"
    )
