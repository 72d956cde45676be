"""``create_runner``: the composition root that picks a runner mode from settings."""

from __future__ import annotations

from .registry import JobRegistry
from .runner import FailoverRunner, PostgresRunner, Runner, TemporalRunner
from .settings import Settings
from .wiring import RunnerMode


def create_runner(settings: Settings | None = None, registry: JobRegistry | None = None) -> Runner:
    """Return a runner configured as ``settings`` ask (default: read from the environment).

    ``JOB_RUNNER_TYPE=temporal`` with fallback (the default) routes through a
    circuit breaker to the PostgreSQL queue; ``temporal`` without fallback
    uses Temporal alone; ``postgres`` the PostgreSQL queue alone (see
    :class:`~algajobs.wiring.RunnerMode`). Runners are async context
    managers; ``start()`` begins processing.
    """
    settings = settings or Settings.load()
    kind = _BY_MODE[RunnerMode.from_settings(settings)]
    return kind(settings, registry if registry is not None else JobRegistry())


# One class in three configurations; the named subclasses read well in reprs and isinstance checks.
_BY_MODE: dict[RunnerMode, type[Runner]] = {
    RunnerMode.POSTGRES: PostgresRunner,
    RunnerMode.TEMPORAL: TemporalRunner,
    RunnerMode.FAILOVER: FailoverRunner,
}
