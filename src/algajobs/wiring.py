"""How each runner mode is put together: its engines and its routing policy."""

from __future__ import annotations

from enum import StrEnum

from temporalio.client import Client

from .circuit import CircuitBreaker, CircuitConfig, CircuitState
from .db import Database
from .engine import Engine
from .enums import RunnerType
from .fallback import PostgresEngine
from .limits import Limits
from .registry import JobRegistry
from .routing import Direct, Failover, Routing
from .settings import Settings
from .store import JobStore
from .telemetry import CIRCUIT_TRANSITIONS
from .temporal.engine import TemporalEngine


class RunnerMode(StrEnum):
    """Which engines a runner uses and how it routes between them."""

    POSTGRES = "postgres"
    """The PostgreSQL queue alone."""
    TEMPORAL = "temporal"
    """Temporal alone: a job Temporal does not take is refused."""
    FAILOVER = "failover"
    """Temporal first, the PostgreSQL queue while Temporal is unreachable."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RunnerMode:
        """The mode ``JOB_RUNNER_TYPE`` and ``JOB_RUNNER_FALLBACK_TO_PGBOSS`` ask for."""
        if settings.runner_type is RunnerType.POSTGRES:
            return cls.POSTGRES
        return cls.FAILOVER if settings.fallback_to_postgres else cls.TEMPORAL


async def build(
    mode: RunnerMode,
    db: Database,
    store: JobStore,
    settings: Settings,
    registry: JobRegistry,
    limits: Limits,
    *,
    client: Client | None = None,
) -> tuple[dict[RunnerType, Engine], Routing]:
    """The engines of ``mode`` and the policy routing between them (Temporal dialled lazily in failover).

    Both engines count against one ``limits``: caps are per process, whichever engine runs the job.
    """
    postgres = PostgresEngine(db, store, settings, registry, limits)
    if mode is RunnerMode.POSTGRES:
        return {RunnerType.POSTGRES: postgres}, Direct(postgres, store)
    failover = mode is RunnerMode.FAILOVER
    temporal = TemporalEngine(db, store, settings, registry, limits, client=client, lazy=failover)
    await temporal.open()
    if not failover:
        return {RunnerType.TEMPORAL: temporal}, Direct(temporal, store)
    breaker = CircuitBreaker(
        CircuitConfig(
            failure_threshold=settings.circuit_failure_threshold,
            cool_down=settings.circuit_cool_down.total_seconds(),
            # A timeout within one call bound of a success means busy, not down.
            busy_window=settings.circuit_call_timeout.total_seconds(),
        ),
        on_change=_export_transition,
    )
    routing = Failover(temporal, postgres, breaker, store, bound=settings.circuit_call_timeout.total_seconds())
    return {RunnerType.TEMPORAL: temporal, RunnerType.POSTGRES: postgres}, routing


def _export_transition(old: CircuitState, new: CircuitState) -> None:
    CIRCUIT_TRANSITIONS.add(1, {"from": old.value, "to": new.value})
