"""Asking a Temporal frontend whether it is healthy, bounded in time."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.client import Client

from ..enums import RunnerType
from ..errors import ConfigurationError, EngineUnavailableError
from ..models import EngineHealth
from ..settings import Settings
from .connection import connect
from .security import is_configuration_failure


async def check_temporal(client: Client, *, wait: float = 2.0) -> EngineHealth:
    """Ask the frontend for its health, bounded by ``wait`` seconds (connecting included)."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(client.service_client.check_health(timeout=timedelta(seconds=wait)), wait)
    except TimeoutError:
        return EngineHealth(engine=RunnerType.TEMPORAL, healthy=False, error=f"no answer within {wait:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; it is reported
        misconfigured = is_configuration_failure(exc)
        error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return EngineHealth(
            engine=RunnerType.TEMPORAL,
            healthy=False,
            error=f"configuration: {error} (check TEMPORAL_TLS_*, TEMPORAL_API_KEY)" if misconfigured else error,
            misconfigured=misconfigured,
        )
    return EngineHealth(engine=RunnerType.TEMPORAL, healthy=True, latency_ms=(time.perf_counter() - started) * 1000)


async def probe_temporal(settings: Settings, *, wait: float = 3.0) -> EngineHealth:
    """Connect to ``TEMPORAL_ADDRESS`` and report its health (for the CLI)."""
    try:
        client = await asyncio.wait_for(connect(settings), wait)
    except (EngineUnavailableError, TimeoutError) as exc:
        return EngineHealth(engine=RunnerType.TEMPORAL, healthy=False, error=str(exc) or "connect timed out")
    except ConfigurationError as exc:
        return EngineHealth(engine=RunnerType.TEMPORAL, healthy=False, error=str(exc), misconfigured=True)
    return await check_temporal(client)
