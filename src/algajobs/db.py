"""Connection pool and the retry wrapper for transient database errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from .enums import RunnerType
from .errors import EngineUnavailableError
from .models import EngineHealth
from .settings import Settings
from .sql import QUERIES

log = logging.getLogger("algajobs.db")
T = TypeVar("T")
Row = dict[str, Any]
Pool = AsyncConnectionPool[psycopg.AsyncConnection[Row]]

# Infrastructure errors worth retrying: the connection dropped or the server
# restarts. Query bugs (ProgrammingError, IntegrityError...) are not retried.
TRANSIENT = (psycopg.OperationalError, PoolTimeout)
_FIRST_BACKOFF = 0.05


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Session settings every algajobs connection uses."""
    return {
        "autocommit": True,
        "row_factory": dict_row,
        "options": f"-c search_path={settings.schema_name}",
    }


async def open_pool(settings: Settings, *, connect_timeout: float = 10.0) -> Pool:
    """Open a pool on ``DATABASE_URL``; raises EngineUnavailableError if unreachable."""
    pool: Pool = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=settings.pool_size,
        kwargs=connection_kwargs(settings),
        connection_class=psycopg.AsyncConnection[Row],
        open=False,
        timeout=connect_timeout,
        name=f"algajobs-{settings.schema_name}",
    )
    try:
        await pool.open(wait=True, timeout=connect_timeout)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        await pool.close()
        raise EngineUnavailableError(f"PostgreSQL unreachable at DATABASE_URL: {exc}") from exc
    return pool


async def with_retry(
    operation: Callable[[], Awaitable[T]], *, deadline: float = 15.0, what: str = "database call"
) -> T:
    """Run ``operation``, retrying transient errors with backoff for up to ``deadline`` s."""
    started = time.monotonic()
    try:
        # Most calls succeed at once; the retry machinery costs ~40 µs, so only build it on failure.
        return await operation()
    except TRANSIENT as exc:
        log.warning("%s failed (%s); retrying", what, exc)
    await asyncio.sleep(_FIRST_BACKOFF)
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TRANSIENT),
        stop=stop_after_delay(max(deadline - (time.monotonic() - started), 0.0)),
        wait=wait_exponential(multiplier=_FIRST_BACKOFF, max=1.0) + wait_random(0, _FIRST_BACKOFF),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "%s failed (%s); retrying", what, state.outcome.exception() if state.outcome else "?"
        ),
    )
    async for attempt in retrying:
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


async def run_query(pool: Pool, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
    """Run the named query on a pooled connection, retrying transient errors; return its rows."""

    async def run() -> list[Row]:
        async with pool.connection() as conn:
            cur = await conn.execute(QUERIES[name], params)
            return await cur.fetchall() if cur.description else []

    return await with_retry(run, what=name)


async def accepting(call: Awaitable[T]) -> T:
    """Await a write that accepts a job; PostgreSQL down means the job was not accepted."""
    try:
        return await call
    except TRANSIENT as exc:
        raise EngineUnavailableError(f"PostgreSQL unavailable; the job was not accepted: {exc}") from exc


async def check_postgres(settings: Settings, pool: Pool | None = None, *, wait: int = 2) -> EngineHealth:
    """Ping PostgreSQL (through ``pool`` when given) and report latency or the error."""
    started = time.perf_counter()
    try:
        if pool is not None:
            async with pool.connection(timeout=wait) as conn:
                await conn.execute("SELECT 1")
        else:
            direct = await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=wait)
            async with direct:
                await direct.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; it is reported
        return EngineHealth(engine=RunnerType.POSTGRES, healthy=False, error=str(exc).splitlines()[0])
    latency = (time.perf_counter() - started) * 1000
    return EngineHealth(engine=RunnerType.POSTGRES, healthy=True, latency_ms=latency)
