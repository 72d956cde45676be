"""Benchmark algajobs' PostgreSQL engine against procrastinate and PgQueuer.

Every system runs on the same PostgreSQL server, in this one process, with the
same no-op handler, job count, worker concurrency and fetch batch size, and
each peer in the configuration its own documentation and benchmark recommend
(see ``bench_procrastinate`` and ``bench_pgqueuer``). Measured per run:

- enqueue rate, one job per call and in batches of ``--enqueue-batch``;
- end-to-end throughput draining N queued jobs: from worker start until the
  system's own tables record every job finished;
- pickup latency p50/p99: a job scheduled to an idle, listening worker, from
  just before the enqueue call to the handler's first line;
- CPU per job during the drain, in this process and in the PostgreSQL server
  (every server process, from /proc: the server must run on this machine):
  what a job costs, which moves less between runs than the wall clock on a
  shared machine. Throughput over total CPU shows how much of that work a
  system overlaps.

Fairness rules: systems run one after another, never at once (the machine has
few cores); the order rotates from run to run; each (run, system) gets a freshly
created database, dropped afterwards; before the drain every system's database
is ``ANALYZE``d (a fresh table just filled with N rows has no statistics yet,
which a long-running deployment's autovacuum would have gathered) and the server
``CHECKPOINT``s, so one system's writes are not flushed on another's clock.
Every run checks that the system completed exactly N jobs (handler calls and
its own tables). Each reported figure is the median of ``--runs`` runs; the
results and each run's raw figures go to ``bench/results/pg_queues-<date>.md``.

Run: ``python bench/pg_queues.py [--jobs 10000] [--concurrency 100] [--batch 100] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SYSTEMS = ("algajobs", "procrastinate", "pgqueuer")
PACKAGES = ("algajobs", "pgqueuer", "procrastinate", "asyncpg", "psycopg", "psycopg-pool")
# (key, label, higher is better)
FIGURES = (
    ("enqueue_single_per_s", "enqueue single (jobs/s)", True),
    ("enqueue_batch_per_s", "enqueue batch (jobs/s)", True),
    ("throughput_per_s", "throughput end-to-end (jobs/s)", True),
    ("latency_p50_ms", "pickup latency p50 (ms)", False),
    ("latency_p99_ms", "pickup latency p99 (ms)", False),
    ("client_cpu_us_per_job", "drain CPU per job, this process (µs)", False),
    ("server_cpu_us_per_job", "drain CPU per job, PostgreSQL server (µs)", False),
    ("total_cpu_us_per_job", "drain CPU per job, both (µs)", False),
)
WARMUP_PINGS = 5  # pickups before the measured ones: first connections, caches
PEER_LATENCY_LIMIT_MS = 10.0  # a peer's p50 above this means it is misconfigured here


@dataclass(frozen=True)
class Config:
    jobs: int
    concurrency: int
    batch: int
    enqueue_batch: int
    samples: int
    procrastinate_pool: int

    @property
    def n_single(self) -> int:
        return min(self.jobs, 2000)


@dataclass
class Result:
    name: str
    run: int
    figures: dict[str, float] = field(default_factory=dict)
    completed_in_db: int = 0
    handler_calls: int = 0
    load_before: float = 0.0
    rtt_before_ms: float = 0.0
    settings: str = ""
    error: str = ""
    log_records: list[str] = field(default_factory=list)


async def admin(statement: sql.Composable | str) -> None:
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(statement)


def dsn_for(name: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def fresh_database(name: str) -> str:
    await drop_database(name)
    await admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return dsn_for(name)


async def drop_database(name: str) -> None:
    await admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def settle(dsn: str) -> None:
    """Same for every system before its drain: table statistics, then a checkpoint."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("ANALYZE")
        await conn.execute("CHECKPOINT")


async def scalar(dsn: str, query: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(query)
        row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


async def round_trip_ms(samples: int = 200) -> float:
    """Median ``SELECT 1`` round trip: how loaded the machine is right now (idle: ~0.1 ms)."""
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        out = []
        for _ in range(samples):
            started = time.perf_counter()
            await conn.execute("SELECT 1")
            out.append((time.perf_counter() - started) * 1000)
    return statistics.median(out)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def _loop(n: int, call: Callable[[], Awaitable[Any]]) -> None:
    for _ in range(n):
        await call()


async def _batches(total: int, size: int, call: Callable[[int], Awaitable[Any]]) -> None:
    while total > 0:
        n = min(size, total)
        await call(n)
        total -= n


async def measure_enqueue(
    result: Result,
    cfg: Config,
    single: Callable[[], Awaitable[Any]],
    many: Callable[[int], Awaitable[Any]],
) -> None:
    """Enqueue cfg.jobs no-op jobs: the first n_single one per call, the rest in batches."""
    elapsed = await timed(lambda: _loop(cfg.n_single, single))
    result.figures["enqueue_single_per_s"] = cfg.n_single / elapsed
    remaining = cfg.jobs - cfg.n_single
    elapsed = await timed(lambda: _batches(remaining, cfg.enqueue_batch, many))
    result.figures["enqueue_batch_per_s"] = remaining / elapsed if remaining else 0.0


async def measure_latency(
    result: Result,
    cfg: Config,
    enqueue: Callable[[], Awaitable[Any]],
    picked: asyncio.Queue[float],
) -> None:
    out = []
    for i in range(WARMUP_PINGS + cfg.samples):
        await asyncio.sleep(0.02)  # let the worker go idle and wait on LISTEN
        started = time.perf_counter()
        await enqueue()
        pickup = (await asyncio.wait_for(picked.get(), 30) - started) * 1000
        if i >= WARMUP_PINGS:
            out.append(pickup)
    result.figures["latency_p50_ms"] = percentile(out, 50)
    result.figures["latency_p99_ms"] = percentile(out, 99)


@dataclass(frozen=True)
class DrainClock:
    """Wall time, this process's CPU and the PostgreSQL server's CPU at the start of a drain."""

    wall: float
    cpu: float
    server_cpu: float

    @classmethod
    def start(cls) -> DrainClock:
        return cls(time.perf_counter(), time.process_time(), server_cpu_seconds())


def finished(result: Result, cfg: Config, clock: DrainClock) -> None:
    """End of a drain: throughput, and CPU per job in this process and in the server.

    The CPU a job costs is steadier from run to run than the wall clock, which
    other tenants of a shared machine move.
    """
    result.figures["throughput_per_s"] = cfg.jobs / (time.perf_counter() - clock.wall)
    client = (time.process_time() - clock.cpu) / cfg.jobs * 1e6
    server = (server_cpu_seconds() - clock.server_cpu) / cfg.jobs * 1e6
    result.figures["client_cpu_us_per_job"] = client
    result.figures["server_cpu_us_per_job"] = server
    result.figures["total_cpu_us_per_job"] = client + server


# The local server's postmaster, found once from a backend's parent (None: not readable here).
POSTMASTER_PID: int | None = None


def _proc_stat(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], utime [11])."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


async def find_postmaster() -> int | None:
    """The server's main process, if it runs on this machine and /proc shows it."""
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        cur = await conn.execute("SELECT pg_backend_pid()")
        row = await cur.fetchone()
    try:
        return int(_proc_stat(row[0])[1]) if row else None
    except OSError:  # another machine's server, or no /proc
        return None


def server_cpu_seconds() -> float:
    """CPU the PostgreSQL server has used, every process: the postmaster, its live children, and
    those that exited (their time is added to the postmaster's once it reaps them). NaN when
    the server's processes cannot be read."""
    if POSTMASTER_PID is None:
        return math.nan
    try:
        for _ in range(100):
            before = _proc_stat(POSTMASTER_PID)
            children = 0
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        fields = _proc_stat(entry.name)
                    except OSError:  # exited and reaped meanwhile: the postmaster's count changed
                        continue
                    if int(fields[1]) == POSTMASTER_PID:
                        children += int(fields[11]) + int(fields[12])
            after = _proc_stat(POSTMASTER_PID)
            if after[13:15] == before[13:15]:  # no child reaped during the scan: counted once
                return (sum(int(v) for v in after[11:15]) + children) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return math.nan
    return math.nan  # children kept exiting while it counted


class WarningLog(logging.Handler):
    """Keeps every WARNING-or-worse record logged during a run (retries, deadlocks, errors)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class Counter:
    """Counts no-op handler calls; ``done`` is set at ``target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.calls = 0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.calls += 1
        if self.calls >= self.target:
            self.done.set()


# -- algajobs ------------------------------------------------------------------


async def bench_algajobs(cfg: Config, result: Result) -> None:
    from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, Settings

    dsn = await fresh_database("aj_bench_algajobs")
    registry = JobRegistry()
    counter = Counter(cfg.jobs)
    picked: asyncio.Queue[float] = asyncio.Queue()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        counter.hit()

    @registry.handler("ping")
    async def ping(ctx: JobContext, data: Any) -> None:
        picked.put_nowait(time.perf_counter())

    settings = Settings.load(
        database_url=dsn,
        runner_type="postgres",
        worker_concurrency=cfg.concurrency,
        fetch_batch_size=cfg.batch,
        pool_size=10,
    )
    result.settings = f"worker_concurrency={cfg.concurrency}, fetch_batch_size={cfg.batch}, pool_size=10"
    async with PostgresRunner(settings, registry) as runner:
        await measure_enqueue(
            result,
            cfg,
            lambda: runner.schedule_job("noop", None, tenant_id="t"),
            lambda n: runner.schedule_jobs("noop", [None] * n, tenant_id="t"),
        )
        await settle(dsn)
        clock = DrainClock.start()
        await runner.start()
        await asyncio.wait_for(counter.done.wait(), 600)
        worker = runner.worker
        assert worker is not None
        await worker.stop()  # flushes the last completions to the table
        finished(result, cfg, clock)
        counts = await runner.count_jobs_by_status(tenant_id="t", job_name="noop")
        result.completed_in_db = counts.get(JobStatus.COMPLETED, 0)
        result.handler_calls = counter.calls

    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        await measure_latency(result, cfg, lambda: runner.schedule_job("ping", None, tenant_id="t"), picked)


# -- procrastinate ---------------------------------------------------------------
# Configuration, from procrastinate's docs (docs/howto/basics/worker.md, "Inside an
# application"; docs/discussions.md, "Mind the size of your PostgreSQL pool" and "How
# polling works"; docs/howto/production/concurrency.md) and its own benchmark
# (tests/benchmarks/test_benchmark_async.py: defer, then ``run_worker_async(wait=False)``):
# - in-process worker: ``run_worker_async(install_signal_handlers=False)`` on an open app,
#   cancelled to stop (docs/howto/advanced/shutdown.md);
# - ``concurrency`` sub-workers (async tasks), the same number as everyone else's;
# - listen_notify=True (the default): a dedicated connection, outside the pool, LISTENs, so
#   pickup does not wait for fetch_job_polling_interval (5 s, only the fallback poll);
# - the pool: the docs size it by job length ("the shorter your average job execution time,
#   the more your pool will need to contain as many connections as your concurrency (plus
#   one)") so that sub-workers never wait for a connection. With no-op jobs the serial fetch
#   loop keeps only a few jobs in flight, and measured here (concurrency 100, 10,000 jobs):
#   4 (psycopg_pool's default) ~1,080/s, 10 ~1,050/s, 20 ~800/s, 50 ~720/s. The default is
#   therefore 10, the same pool as algajobs' (--procrastinate-pool overrides).
# Why this harness used to get 100-270 jobs/s: it drained a table just filled with N rows and
# never analyzed, and procrastinate's fetch (procrastinate_fetch_job_v2) then ran a plan whose
# cost grows with the queued jobs (~5,000 index scans per fetch: 3-5 ms each, one fetch at a
# time) - ~300 jobs/s, less on a busy machine. ``settle`` (ANALYZE, for every system) gives it
# the statistics autovacuum would have gathered by then: ~0.75 ms per fetch, ~1,000 jobs/s.
# procrastinate fetches one job per query, in one serial loop (worker.py,
# _fetch_and_process_jobs), each query preceded by the pool's connection check: its throughput
# is bound by round trips and its own CPU per job, not by concurrency.


async def bench_procrastinate(cfg: Config, result: Result) -> None:
    import procrastinate

    dsn = await fresh_database("aj_bench_procrastinate")
    pool = cfg.procrastinate_pool
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=pool, max_size=pool))
    counter = Counter(cfg.jobs)
    picked: asyncio.Queue[float] = asyncio.Queue()

    @app.task(name="noop")
    async def noop() -> None:
        counter.hit()

    @app.task(name="ping")
    async def ping() -> None:
        picked.put_nowait(time.perf_counter())

    worker_options: dict[str, Any] = {
        "concurrency": cfg.concurrency,
        "listen_notify": True,
        "install_signal_handlers": False,
    }
    result.settings = (
        f"PsycopgConnector pool min_size=max_size={pool}, run_worker_async(concurrency={cfg.concurrency}, "
        "listen_notify=True, install_signal_handlers=False); drain with wait=False"
    )
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await measure_enqueue(result, cfg, noop.defer_async, lambda n: noop.batch_defer_async(*([{}] * n)))
        await settle(dsn)
        clock = DrainClock.start()
        # wait=False: the worker returns once the queue is empty and its jobs are finished
        await app.run_worker_async(wait=False, **worker_options)
        finished(result, cfg, clock)
        result.completed_in_db = await scalar(
            dsn, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'noop' AND status = 'succeeded'"
        )
        result.handler_calls = counter.calls

        worker = asyncio.create_task(app.run_worker_async(**worker_options))
        try:
            await measure_latency(result, cfg, ping.defer_async, picked)
        finally:
            worker.cancel()  # documented graceful stop (docs/howto/advanced/shutdown.md)
            await asyncio.gather(worker, return_exceptions=True)


# -- PgQueuer --------------------------------------------------------------------
# Configuration, from PgQueuer's docs and benchmark (tools/benchmark.py, default driver
# "apg"; docs/comparisons/benchmarks.md: asyncpg ~1.7x psycopg; docs/guides/
# performance-tuning.md, "Quick-reference checklist"):
# - asyncpg: the QueueManager on its own direct connection (``AsyncpgDriver``: "always use a
#   direct asyncpg connection (not a pool) for the QueueManager"), so asyncpg delivers its
#   NOTIFYs as they arrive (on psycopg the listener shares the query connection's lock:
#   ~1 s pickups); the producer on another ``AsyncpgDriver`` connection, as tools/benchmark.py
#   does (the docs' AsyncpgPoolDriver for producers serves concurrent producers; for this one
#   sequential producer it measured slower here, 1.6-1.7k vs 2.5k single enqueues/s);
# - ``pgq autovac`` after install (``Queries.optimize_autovacuum``);
# - ``batch_size`` = the common fetch batch; ``max_concurrent_tasks`` is the common
#   concurrency, raised to 2 x batch_size, the least PgQueuer accepts ("must be at least
#   2 x batch_size"); durability stays "durable" (the default), like the others.


async def bench_pgqueuer(cfg: Config, result: Result) -> None:
    import asyncpg
    from pgqueuer import PgQueuer, Queries
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode

    dsn = await fresh_database("aj_bench_pgqueuer")
    counter = Counter(cfg.jobs)
    picked: asyncio.Queue[float] = asyncio.Queue()
    max_tasks = max(cfg.concurrency, 2 * cfg.batch)
    result.settings = (
        f"producer AsyncpgDriver, QueueManager AsyncpgDriver (its own connection), batch_size={cfg.batch}, "
        f"max_concurrent_tasks={max_tasks}, optimize_autovacuum, durability=durable"
    )

    def make_app(conn: Any) -> Any:
        pgq = PgQueuer(AsyncpgDriver(conn))

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            counter.hit()

        @pgq.entrypoint("ping")
        async def ping(job: Job) -> None:
            picked.put_nowait(time.perf_counter())

        return pgq

    producer = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(producer))
        await queries.install()
        await queries.optimize_autovacuum()
        await measure_enqueue(
            result,
            cfg,
            lambda: queries.enqueue("noop", None),
            lambda n: queries.enqueue(["noop"] * n, [None] * n, [0] * n),
        )
        await settle(dsn)

        conn = await asyncpg.connect(dsn)
        try:
            pgq = make_app(conn)
            clock = DrainClock.start()
            # drain: returns once the queue is empty and the completions are logged
            await pgq.run(batch_size=cfg.batch, mode=QueueExecutionMode.drain, max_concurrent_tasks=max_tasks)
            finished(result, cfg, clock)
        finally:
            await conn.close()
        result.completed_in_db = await scalar(
            dsn, "SELECT count(DISTINCT job_id) FROM pgqueuer_log WHERE entrypoint = 'noop' AND status = 'successful'"
        )
        result.handler_calls = counter.calls

        conn = await asyncpg.connect(dsn)
        try:
            pgq = make_app(conn)
            worker = asyncio.create_task(pgq.run(batch_size=cfg.batch, max_concurrent_tasks=max_tasks))
            try:
                await measure_latency(result, cfg, lambda: queries.enqueue("ping", None), picked)
            finally:
                pgq.shutdown.set()
                await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), 30)
        finally:
            await conn.close()
    finally:
        await producer.close()


BENCHES = {"algajobs": bench_algajobs, "procrastinate": bench_procrastinate, "pgqueuer": bench_pgqueuer}


# -- report ------------------------------------------------------------------------


def median_figures(results: list[Result], names: list[str]) -> dict[str, dict[str, float]]:
    """Per system and figure, the median over the runs that produced the figure (NaN: none did)."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        out[name] = {}
        for key, _, _ in FIGURES:
            values = [r.figures[key] for r in results if r.name == name and key in r.figures]
            out[name][key] = statistics.median(values) if values else math.nan
    return out


def fmt(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table_rows(medians: dict[str, dict[str, float]], names: list[str]) -> tuple[list[str], list[list[str]]]:
    peers = [n for n in names if n != "algajobs"]
    header = ["figure (median)", *names, *(f"algajobs/{p}" for p in peers)]
    rows = []
    for key, label, higher in FIGURES:
        row = [f"{label} {'↑' if higher else '↓'}", *(fmt(medians[n][key]) for n in names)]
        for peer in peers:
            ours, theirs = medians["algajobs"][key], medians[peer][key]
            ok = math.isfinite(ours) and math.isfinite(theirs) and theirs > 0
            row.append(f"{ours / theirs:.2f}x" if ok else "n/a")
        rows.append(row)
    return header, rows


def accounting(results: list[Result], cfg: Config, name: str) -> str:
    mine = [r for r in results if r.name == name]
    good = sum(1 for r in mine if r.completed_in_db == cfg.jobs and r.handler_calls == cfg.jobs)
    return f"{good}/{len(mine)} runs exactly {cfg.jobs}"


def checks(results: list[Result], cfg: Config, medians: dict[str, dict[str, float]]) -> list[str]:
    out = []
    for r in results:
        if r.error:
            out.append(f"FAIL run {r.run} {r.name}: {r.error}")
        elif r.completed_in_db != cfg.jobs or r.handler_calls != cfg.jobs:
            out.append(
                f"FAIL run {r.run} {r.name}: {r.completed_in_db} completed in its tables, "
                f"{r.handler_calls} handler calls, expected {cfg.jobs}"
            )
        if r.load_before > 1.0:
            out.append(f"WARN run {r.run} {r.name}: 1-min load average {r.load_before:.2f} at start (machine busy)")
    for name, figures in medians.items():
        if name != "algajobs" and not figures["latency_p50_ms"] <= PEER_LATENCY_LIMIT_MS:
            out.append(f"WARN {name}: pickup p50 {figures['latency_p50_ms']:.1f} ms > {PEER_LATENCY_LIMIT_MS} ms")
    for name in medians:
        for key, label, _ in FIGURES:
            values = [r.figures[key] for r in results if r.name == name and key in r.figures]
            if len(values) > 1 and min(values) > 0 and max(values) / min(values) > 1.5:
                out.append(f"WARN {name} {label}: runs spread {min(values):.2f}..{max(values):.2f} (> 1.5x)")
    return out


def print_report(results: list[Result], cfg: Config, names: list[str]) -> list[str]:
    medians = median_figures(results, names)
    header, rows = table_rows(medians, names)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    runs = len({r.run for r in results})
    print(
        f"\n{cfg.jobs} no-op jobs, concurrency {cfg.concurrency}, batch {cfg.batch}, "
        f"enqueue batch {cfg.enqueue_batch}; median of {runs} runs"
    )
    for line in [header, *rows]:
        cells = [cell.rjust(w) for cell, w in zip(line, widths, strict=True)]
        print("  ".join([line[0].ljust(widths[0]), *cells[1:]]))
    for name in names:
        print(f"jobs accounted for, {name}: {accounting(results, cfg, name)}")
    ours = medians["algajobs"]
    peers = [medians[n]["throughput_per_s"] for n in names if n != "algajobs"]
    peers = [v for v in peers if math.isfinite(v)]
    if peers and math.isfinite(ours["throughput_per_s"]):
        print(f"\nthroughput vs best peer: {ours['throughput_per_s'] / max(peers):.2f}x (target >= 1.5x)")
    print(
        f"pickup latency p50 / p99: {fmt(ours['latency_p50_ms'])} / {fmt(ours['latency_p99_ms'])} ms "
        "(target <= 2.5 / 5 ms)"
    )
    found = checks(results, cfg, medians)
    for line in found:
        print(line)
    return found


# -- machine and versions ----------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def algajobs_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


async def server_settings() -> dict[str, str]:
    names = ("server_version", "max_connections", "shared_buffers", "synchronous_commit", "fsync")
    out = {}
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN) as conn:
        for name in names:
            cur = await conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name)))
            row = await cur.fetchone()
            out[name] = str(row[0]) if row else "?"
    return out


def machine_info(loop_name: str, server: dict[str, str]) -> dict[str, str]:
    settings = {k: v for k, v in server.items() if k != "server_version"}
    info = {
        "CPU cores": f"{os.cpu_count()} ({cpu_model()})",
        "memory": memory_gib(),
        "OS": platform.platform(),
        "PostgreSQL server": server["server_version"],
        "PostgreSQL settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "event loop": loop_name,
        "algajobs commit": algajobs_commit(),
    }
    info.update({f"{name} version": package_version(name) for name in PACKAGES})
    return info


def write_markdown(
    path: Path, results: list[Result], cfg: Config, names: list[str], info: dict[str, str], found: list[str]
) -> None:
    medians = median_figures(results, names)
    header, rows = table_rows(medians, names)
    runs = len({r.run for r in results})
    lines = [
        f"# PostgreSQL queues benchmark, {dt.date.today().isoformat()}",
        "",
        f"`{' '.join(['python', *sys.argv])}`",
        "",
        f"{cfg.jobs} no-op jobs, concurrency {cfg.concurrency}, fetch batch {cfg.batch}, "
        f"enqueue batch {cfg.enqueue_batch}, {cfg.samples} pickup-latency samples; each figure is the median "
        f"of {runs} runs in this one invocation. ↑ higher is better, ↓ lower is better; a ratio is "
        "algajobs' figure over the peer's.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *(
            [
                f"**{len(failed)} run(s) failed; a failed run adds only the figures it measured before "
                "failing (see Checks).**",
                "",
            ]
            if (failed := [line for line in found if line.startswith("FAIL")])
            else []
        ),
        "Jobs accounted for (handler calls and the system's own tables, each run):",
        "",
        *(f"- {name}: {accounting(results, cfg, name)}" for name in names),
        "",
        "## Checks",
        "",
        *([f"- {line}" for line in found] or ["- none: every run completed exactly N jobs, machine idle"]),
        "",
        "## Each run",
        "",
        "| run | system | "
        + " | ".join(label for _, label, _ in FIGURES)
        + " | completed in tables | handler calls | load avg at start"
        + " | SELECT 1 round trip at start (ms) |",
        "| ---: | --- | " + " | ".join("---:" for _ in FIGURES) + " | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(results, key=lambda r: (r.run, SYSTEMS.index(r.name))):
        figures = " | ".join(fmt(r.figures.get(key, math.nan)) for key, _, _ in FIGURES)
        lines.append(
            f"| {r.run} | {r.name} | {figures} | {r.completed_in_db} | {r.handler_calls} "
            f"| {r.load_before:.2f} | {r.rtt_before_ms:.3f} |"
        )
    lines += ["", "## Warnings logged during each run", ""]
    logged = [(r, line) for r in results for line in dict.fromkeys(r.log_records)]
    lines += [f"- run {r.run} {r.name}: {line} (x{r.log_records.count(line)})" for r, line in logged] or ["- none"]
    lines += ["", "## Configuration of each system", ""]
    settings_seen = {r.name: r.settings for r in results}
    lines += [f"- {name}: {settings_seen[name]}" for name in names]
    lines += ["", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# -- main --------------------------------------------------------------------------


async def run_all(cfg: Config, names: list[str], runs: int) -> list[Result]:
    results = []
    warnings = WarningLog()
    logging.getLogger().addHandler(warnings)
    for run in range(1, runs + 1):
        shift = (run - 1) % len(names)
        order = names[shift:] + names[:shift]  # rotate, so no system always goes first
        for name in order:
            result = Result(name, run, load_before=os.getloadavg()[0], rtt_before_ms=await round_trip_ms())
            print(f"run {run}/{runs}: {name} ...", flush=True)
            try:
                await BENCHES[name](cfg, result)
            except Exception as exc:  # one system's failure is a finding; the other runs go on
                result.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                await drop_database(f"aj_bench_{name}")
                result.log_records, warnings.lines = warnings.lines, []
            print(
                "  " + ", ".join(f"{key}={fmt(result.figures.get(key, math.nan))}" for key, _, _ in FIGURES),
                f"completed={result.completed_in_db} calls={result.handler_calls}",
                f"load={result.load_before:.2f} rtt={result.rtt_before_ms:.3f}ms",
                flush=True,
            )
            results.append(result)
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100, help="worker concurrency, all systems")
    parser.add_argument("--batch", type=int, default=100, help="fetch batch size (algajobs, PgQueuer)")
    parser.add_argument("--enqueue-batch", type=int, default=1000, help="jobs per batch enqueue call, all systems")
    parser.add_argument("--runs", type=int, default=3, help="each figure is the median of this many runs")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--procrastinate-pool", type=int, default=10, help="procrastinate's psycopg pool size")
    parser.add_argument("--only", choices=SYSTEMS[1:], action="append", help="peer(s) to run; algajobs always runs")
    parser.add_argument("--uvloop", action="store_true", help="run every system on uvloop instead of asyncio's loop")
    parser.add_argument("--out", type=Path, help="markdown results file (default bench/results/pg_queues-<date>.md)")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    # procrastinate warns that the App lives in __main__; the tasks have explicit names
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    global POSTMASTER_PID  # found once per invocation, read at every drain
    POSTMASTER_PID = await find_postmaster()
    server = await server_settings()
    info = machine_info("uvloop" if args.uvloop else "asyncio (default)", server)
    cfg = Config(
        jobs=args.jobs,
        concurrency=args.concurrency,
        batch=args.batch,
        enqueue_batch=args.enqueue_batch,
        samples=args.latency_samples,
        procrastinate_pool=args.procrastinate_pool,
    )
    names = [n for n in SYSTEMS if n == "algajobs" or not args.only or n in args.only]
    results = await run_all(cfg, names, args.runs)
    found = print_report(results, cfg, names)
    out = args.out or RESULTS_DIR / f"pg_queues-{dt.date.today().isoformat()}.md"
    write_markdown(out, results, cfg, names, info, found)
    print(f"\nwrote {out}")
    return 1 if any(line.startswith("FAIL") for line in found) else 0


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.uvloop:
        import uvloop

        sys.exit(uvloop.run(main(arguments)))
    sys.exit(asyncio.run(main(arguments)))
