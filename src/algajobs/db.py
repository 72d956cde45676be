"""The query manager: every statement algajobs runs goes through :class:`Database`.

One place owns the three things every call needs: the named SQL block, the
retry of transient errors (a dropped connection, a restarting server) within
``JOB_DB_RETRY_SECONDS``, and the translation of driver errors into the typed
tree, so no public method lets a psycopg exception escape::

    psycopg.OperationalError, PoolTimeout  → retried, then EngineUnavailableError
    undefined table / schema               → ConfigurationError (run the migrations)
    any other psycopg.Error                → DatabaseError
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential, wait_random

from .encryption import KeySet
from .enums import RunnerType
from .errors import AlgaJobsError, ConfigurationError, DatabaseError, EngineUnavailableError, ValidationError
from .models import EngineHealth
from .settings import Settings
from .sql import QUERIES

log = logging.getLogger("algajobs.db")
T = TypeVar("T")
Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Row]
Pool = AsyncConnectionPool[Connection]

# Infrastructure errors worth retrying: the connection dropped or the server
# restarts. Query bugs (ProgrammingError, IntegrityError...) are not retried, nor is
# a program limit (see _program_limit), which the driver counts as operational.
TRANSIENT = (psycopg.OperationalError, PoolTimeout)


def is_transient(exc: BaseException) -> bool:
    """True for an error worth retrying (see ``TRANSIENT``)."""
    return isinstance(exc, TRANSIENT) and not _program_limit(exc)


def _program_limit(exc: BaseException) -> bool:
    """A limit the same statement exceeds again (SQLSTATE class 54: a value or statement too large).

    Not a full NOTIFY queue (also 54000): listeners drain it, so it passes.
    """
    state = getattr(exc, "sqlstate", None) or ""
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(exc)
    return state.startswith("54") and "NOTIFY" not in message


_FIRST_BACKOFF = 0.05
_MIN_ATTEMPT = 0.5  # a pool wait shorter than this cannot even complete a reconnect
BATCH_BYTES = 64 * 1024 * 1024
"""Batch statements send their payloads as one JSON value, which holds at most about 256 MiB."""


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (what the server holds), without encoding ASCII text."""
    return len(text) if text.isascii() else len(text.encode())


def batch_spans(sizes: Sequence[int], limit: int = BATCH_BYTES) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of ``sizes`` whose sums stay within ``limit`` (one item at least each)."""
    spans: list[tuple[int, int]] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > limit:
            spans.append((start, index))
            start, total = index, 0
        total += size
    spans.append((start, len(sizes)))
    return spans


def refused_for_its_data(exc: BaseException) -> bool:
    """True when PostgreSQL refused a statement (``exc`` or the driver error it was raised from) for what it holds.

    Invalid or out-of-range data (SQLSTATE class 22), a program limit (54, not a
    full NOTIFY queue), or the 1 GiB allocation limit (an internal error, XX000,
    whose message the server never translates), which a jsonb value of about
    40 MB of dense numbers outgrows once parsed. Sending the same data again
    fails again. Other internal errors are not counted: they say nothing of the data.
    """
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    if cause is None:
        return False
    if isinstance(cause, psycopg.DataError) or _program_limit(cause):
        return True
    return getattr(cause, "sqlstate", None) == "XX000" and "invalid memory alloc request size" in str(cause)


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """Session settings every algajobs connection uses."""
    return {
        "autocommit": True,
        "row_factory": dict_row,
        # JIT compiles a plan for tens of ms; queue statements run in well under one, and the
        # claim's per-tenant LIMIT makes the planner overestimate its rows enough to trigger it.
        "options": f"-c search_path={settings.schema_name} -c jit=off",
    }


def translate(exc: BaseException, what: str) -> AlgaJobsError:
    """The typed error for a driver error raised by ``what``."""
    if is_transient(exc):
        return EngineUnavailableError(f"PostgreSQL unavailable ({what}): {_first_line(exc)}")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
        return ConfigurationError(f"{_first_line(exc)}; run 'algajobs migrate' for JOB_SCHEMA")
    return DatabaseError(f"{what} failed: {type(exc).__name__}: {_first_line(exc)}")


async def with_retry(operation: Callable[[float], Awaitable[T]], *, deadline: float, what: str) -> T:
    """Run ``operation(remaining_seconds)``, retrying transient errors with backoff until ``deadline`` s.

    Raises the last transient error when the deadline passes; other errors at once.
    """
    started = time.monotonic()

    def remaining() -> float:
        return max(deadline - (time.monotonic() - started), _MIN_ATTEMPT)

    try:
        # Most calls succeed at once; the retry machinery costs ~40 µs, so only build it on failure.
        return await operation(remaining())
    except TRANSIENT as exc:
        if not is_transient(exc):
            raise
        log.warning("%s failed (%s); retrying", what, _first_line(exc))
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_delay(max(deadline - (time.monotonic() - started), 0.0)),
        wait=wait_exponential(multiplier=_FIRST_BACKOFF, max=1.0) + wait_random(0, _FIRST_BACKOFF),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "%s failed (%s); retrying", what, state.outcome.exception() if state.outcome else "?"
        ),
    )
    await asyncio.sleep(_FIRST_BACKOFF)
    async for attempt in retrying:
        with attempt:
            return await operation(remaining())
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class Transaction:
    """Named statements on one connection inside one open transaction (rows as dicts, whatever the connection's)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    @property
    def connection(self) -> psycopg.AsyncConnection[Any]:
        """The connection whose transaction this is (for work that is not a named statement)."""
        return self._conn

    async def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a named query and return its rows."""
        cur = self._conn.cursor(row_factory=dict_row)
        await cur.execute(QUERIES[name], params)
        return await cur.fetchall() if cur.description else []

    async def execute(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a named statement and return its row count."""
        cur = await self._conn.execute(QUERIES[name], params)
        return cur.rowcount


@contextlib.asynccontextmanager
async def joined(conn: psycopg.AsyncConnection[Any], schema: str) -> AsyncIterator[Transaction]:
    """Our statements inside the caller's open transaction; our schema is on its path only meanwhile.

    ValidationError when ``conn`` has no transaction to join (autocommit
    outside ``conn.transaction()``): the job would commit on its own.
    """
    if not isinstance(conn, psycopg.AsyncConnection):
        raise ValidationError(f"connection must be a psycopg AsyncConnection, not {type(conn).__name__}")
    if conn.autocommit and conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE:
        raise ValidationError("connection= needs an open transaction: use 'async with conn.transaction():'")
    tx = Transaction(conn)
    what = "enqueue in the caller's transaction"
    try:
        (path,) = await tx.fetch("push_search_path", {"schema": schema})
    except psycopg.Error as exc:
        raise translate(exc, what) from exc
    try:
        yield tx
    except psycopg.Error as exc:
        raise translate(exc, what) from exc
    finally:
        # Leave the caller's path as it was, even if it goes on after our error.
        with contextlib.suppress(psycopg.Error):
            await tx.fetch("pop_search_path", {"path": path["previous"]})


class Database:
    """The pool and every statement run on it: retried, bounded, translated.

    ``keys`` (from ``JOB_ENCRYPTION_KEYS``) is how this process seals and opens
    payload columns; None when encryption is off.
    """

    def __init__(self, pool: Pool, *, deadline: float, keys: KeySet | None = None) -> None:
        self.pool = pool
        self.deadline = deadline
        self.keys = keys

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        """Open a pool on ``DATABASE_URL``; EngineUnavailableError if it does not answer in time."""
        deadline = settings.db_retry_deadline.total_seconds()
        keys = settings.key_set()  # before the pool: a key problem leaves nothing open
        pool: Pool = AsyncConnectionPool(
            settings.database_url,
            min_size=1,
            max_size=settings.pool_size,
            kwargs=connection_kwargs(settings),
            connection_class=Connection,
            open=False,
            timeout=deadline,
            name=f"algajobs-{settings.schema_name}",
        )
        try:
            await pool.open(wait=True, timeout=deadline)
        except TRANSIENT as exc:
            await pool.close()
            raise EngineUnavailableError(f"PostgreSQL unreachable at DATABASE_URL: {_first_line(exc)}") from exc
        return cls(pool, deadline=deadline, keys=keys)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.pool.close()

    async def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run the named query on a pooled connection and return its rows."""

        async def run(wait: float) -> list[Row]:
            async with self.pool.connection(timeout=wait) as conn:
                cur = await conn.execute(QUERIES[name], params)
                return await cur.fetchall() if cur.description else []

        return await self._call(run, name)

    async def execute(self, name: str, params: Mapping[str, Any] | None = None) -> int:
        """Run the named statement on a pooled connection and return its row count."""

        async def run(wait: float) -> int:
            async with self.pool.connection(timeout=wait) as conn:
                cur = await conn.execute(QUERIES[name], params)
                return cur.rowcount

        return await self._call(run, name)

    async def transact(self, work: Callable[[Transaction], Awaitable[T]], *, what: str) -> T:
        """Run ``work`` in one transaction; the whole unit is retried on transient errors."""

        async def run(wait: float) -> T:
            async with self.pool.connection(timeout=wait) as conn, conn.transaction():
                return await work(Transaction(conn))

        return await self._call(run, what)

    async def ping(self, *, wait: float = 2.0) -> EngineHealth:
        """One ``SELECT 1`` bounded by ``wait`` s: the PostgreSQL engine's health."""
        return await _timed_ping(lambda: self._select_one(wait), wait)

    async def _select_one(self, wait: float) -> None:
        async with self.pool.connection(timeout=wait) as conn:
            await conn.execute(QUERIES["ping"])

    async def _call(self, run: Callable[[float], Awaitable[T]], what: str) -> T:
        try:
            return await with_retry(run, deadline=self.deadline, what=what)
        except psycopg.Error as exc:  # PoolTimeout is an OperationalError too
            raise translate(exc, what) from exc


@contextlib.asynccontextmanager
async def listening(settings: Settings, channel: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A dedicated connection (outside the pool) that LISTENs on ``channel``; driver errors translated."""
    try:
        wait = max(int(settings.db_retry_deadline.total_seconds()), 1)
        conn = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True, connect_timeout=wait)
    except psycopg.Error as exc:
        raise translate(exc, f"listen on {channel}") from exc
    async with conn:
        try:
            await conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
        except psycopg.Error as exc:
            raise translate(exc, f"listen on {channel}") from exc
        yield conn


async def probe_postgres(settings: Settings, *, wait: float = 2.0) -> EngineHealth:
    """Connect to ``DATABASE_URL`` once (no pool) and report its health (for the CLI)."""

    async def select_one() -> None:
        conn = await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=max(int(wait), 1))
        async with conn:
            await conn.execute(QUERIES["ping"])

    return await _timed_ping(select_one, wait)


async def _timed_ping(ping: Callable[[], Awaitable[None]], wait: float) -> EngineHealth:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), wait)
    except TimeoutError:
        return EngineHealth(engine=RunnerType.POSTGRES, healthy=False, error=f"no answer within {wait:g}s")
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; it is reported
        return EngineHealth(engine=RunnerType.POSTGRES, healthy=False, error=_first_line(exc))
    return EngineHealth(engine=RunnerType.POSTGRES, healthy=True, latency_ms=(time.perf_counter() - started) * 1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
