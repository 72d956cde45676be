"""Scale curves of algajobs' PostgreSQL engine: backlog, worker processes, blocked backlogs, pruning, memory.

Every figure comes from real worker processes (``multiprocessing`` spawn, each a
``PostgresRunner`` with ``runner_type=postgres``) on their own fresh schema in
the ``test`` database, dropped afterwards. Measured:

- **backlog curve**: end-to-end throughput of one worker process (no-op
  handler, ``--concurrency``, ``--batch``) completing ``--jobs`` jobs from a
  ``jobs`` table that holds a backlog of B queued jobs (``--backlogs``). The
  clock runs from the moment the worker may start (its pool already open) to
  the ``completed_at`` of the N-th completion in the table. After each run:
  the ``jobs`` table and each index's size (before and after the run), dead
  tuples (``pg_stat_user_tables``) and the claim query's plan
  (``EXPLAIN (ANALYZE, BUFFERS)`` of ``claim_jobs``, rolled back) before and
  after the drain;
- **worker-process curve**: the same with 1, 2, 4... processes (``--workers``)
  draining a backlog of ``--process-backlog``;
- **unserved backlog**: one worker process completing ``--jobs`` no-op jobs queued
  behind U jobs of a type it does not run (``--unserved``), as during a rolling
  deploy: the claim must not read the jobs it cannot take;
- **paused queue** (engines with named queues): the same, the U jobs waiting in
  a queue the worker serves and ``runner.pause_queue`` paused;
- **pruning**: one worker drains a queue while the table also holds
  ``--prune-finished`` finished jobs two days old; once it is warm, this process
  calls ``runner.prune(older_than=1 day)``. Throughput while the prune runs vs.
  just before it, and the longest gap between two completions in each window
  (a stall shows there);
- **memory**: RSS of one worker process, open and idle, then holding its full
  concurrency of handlers that ``asyncio.sleep(--hold)`` (``--memory-concurrency``).

The backlog is filled in seconds: the engine enqueues one job through
``schedule_jobs`` and that row is cloned with ``INSERT ... SELECT ...
generate_series`` (so every column the engine writes, including ones added
later, holds what the engine would write), each clone with its own version 7 id
and distinct, increasing ``run_at``/``created_at``. The table is then
``VACUUM ANALYZE``d (what autovacuum would have done to a settled table) and the
server ``CHECKPOINT``s before the workers start. Every run checks that all jobs
are accounted for (handler calls = completed rows; completed + queued = backlog;
nothing left processing or failed). Each figure is the median of ``--rounds``
rounds in this one invocation, the order of sizes rotating per round; results
go to ``bench/results/scale-<date>.md``.

Run: ``python bench/scale.py [--quick] [--backlogs 10000,100000,1000000] [--workers 1,2,4]
[--unserved 0,100000,1000000] [--jobs 10000] [--rounds 3] [--note TEXT]
[--sections backlog,processes,unserved,paused,prune,memory]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import inspect
import json
import logging
import math
import multiprocessing as mp
import os
import re
import statistics
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

import psycopg
from pg_queues import WarningLog, fmt, machine_info, server_settings
from psycopg import sql

DSN = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TENANT = "t"
READY_WAIT = 60.0  # a worker process imports, migrates (no-op) and opens its pool within this
FLUSH_WAIT = 30.0  # handler calls reached N: the completions are in the table within this
STOP_WAIT = 60.0  # a stopped worker process reports and exits within this
PRUNE_AGE = timedelta(days=2)  # finished rows' age: inside the default retention (7 days), so
PRUNE_OLDER_THAN = timedelta(days=1)  # the workers' own maintenance prune leaves them to ours


@dataclass(frozen=True)
class Config:
    backlogs: list[int]
    workers: list[int]
    jobs: int
    rounds: int
    concurrency: int
    batch: int
    pool_size: int
    process_backlog: int
    unserved: list[int]
    prune_finished: int
    prune_queued: int
    memory_concurrency: list[int]
    hold: float
    sections: list[str]
    quick: bool
    note: str


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs (picklable: it crosses the spawn boundary)."""

    schema: str
    concurrency: int
    batch: int
    pool_size: int
    hold: float
    bulk: bool = False  # also run type 'report', registered in queue 'bulk' (the paused-queue section)


@dataclass
class Run:
    """One measured run: a section, its parameter (backlog, processes...), a round."""

    section: str
    param: int
    round: int
    figures: dict[str, float] = field(default_factory=dict)
    sizes_before: dict[str, int] = field(default_factory=dict)
    sizes_after: dict[str, int] = field(default_factory=dict)
    table_stats: dict[str, int] = field(default_factory=dict)
    plan_before: str = ""
    plan_after: str = ""
    accounted: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    load_before: float = 0.0


# -- worker process ------------------------------------------------------------------


def worker_main(spec: WorkerSpec, calls: Any, ready: Any, go: Any, stop: Any, out: Any, deadline: float) -> None:
    """Entry point of a spawned worker process: open, signal ready, start on ``go``, stop on ``stop``."""
    logging.basicConfig(level=logging.WARNING)
    warnings = WarningLog()
    logging.getLogger().addHandler(warnings)
    try:
        report = asyncio.run(_serve(spec, calls, ready, go, stop, deadline))
    except BaseException as exc:
        report = {"error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    report["warnings"] = list(dict.fromkeys(warnings.lines))[:20]
    report["pid"] = os.getpid()
    out.put(report)


async def _serve(spec: WorkerSpec, calls: Any, ready: Any, go: Any, stop: Any, deadline: float) -> dict[str, Any]:
    from algajobs import JobContext, JobRegistry, PostgresRunner

    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        calls.value += 1

    @registry.handler("sleep")
    async def sleep(ctx: JobContext, data: Any) -> None:
        calls.value += 1  # counted on entry: the parent waits for the whole concurrency to be held
        await asyncio.sleep(spec.hold)

    if spec.bulk:
        register_report(registry, calls)
    settings = settings_for(spec.schema, spec.concurrency, spec.batch, spec.pool_size)
    async with PostgresRunner(settings, registry) as runner:
        ready.set()
        if not await asyncio.to_thread(go.wait, READY_WAIT):
            return {"error": "no go signal"}
        await runner.start()
        cpu = time.process_time()
        await asyncio.to_thread(stop.wait, deadline)
        cpu = time.process_time() - cpu  # this process's CPU while it worked (the parent then stops it)
        worker = runner.worker
        assert worker is not None
        await worker.stop()  # flushes the last completions, hands claimed-but-unrun jobs back
        failed = worker.failed
        return {
            "stats": vars(worker.stats).copy(),
            "failed": repr(failed) if failed else "",
            "cpu": cpu,
            "calls": calls.value,
        }


def has_queues(registry: Any) -> bool:
    """Whether this engine has named queues (``handler(..., queue=)`` and ``pause_queue``)."""
    return "queue" in inspect.signature(registry.handler).parameters


def register_report(registry: Any, calls: Any = None) -> None:
    """Type 'report' in queue 'bulk': the paused queue's jobs (counted if one ever runs)."""

    @registry.handler("report", queue="bulk")
    async def report(ctx: Any, data: Any) -> None:
        if calls is not None:
            calls.value += 1


def settings_for(schema: str, concurrency: int = 20, batch: int = 50, pool_size: int = 10) -> Any:
    from algajobs import Settings

    return Settings.load(
        database_url=DSN,
        schema_name=schema,
        runner_type="postgres",
        worker_concurrency=concurrency,
        fetch_batch_size=batch,
        pool_size=pool_size,
    )


class Workers:
    """N spawned worker processes on one schema; every wait bounded, every process ended."""

    def __init__(self, ctx: SpawnContext, spec: WorkerSpec, n: int, deadline: float) -> None:
        self.calls = [ctx.Value("q", 0, lock=False) for _ in range(n)]
        self.ready = [ctx.Event() for _ in range(n)]
        self.go, self.stop, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.procs: list[SpawnProcess] = [
            ctx.Process(
                target=worker_main,
                args=(spec, self.calls[i], self.ready[i], self.go, self.stop, self.out, deadline),
                daemon=True,
            )
            for i in range(n)
        ]
        self.reports: list[dict[str, Any]] = []

    @property
    def total(self) -> int:
        return sum(c.value for c in self.calls)

    def check_alive(self) -> None:
        dead = [p.pid for p in self.procs if not p.is_alive()]
        if dead:
            raise RuntimeError(f"worker process(es) {dead} exited early")

    async def start(self) -> float:
        """Start the processes, wait until each is ready, then release them all; return the go time."""
        for proc in self.procs:
            proc.start()
        for ready in self.ready:
            if not await asyncio.to_thread(ready.wait, READY_WAIT):
                self.check_alive()
                raise TimeoutError(f"a worker process was not ready within {READY_WAIT:.0f}s")
        started = time.time()
        self.go.set()
        return started

    async def wait_calls(self, target: int, within: float) -> float:
        """Wait until the handlers ran ``target`` times in all; return when (wall clock)."""
        limit = time.monotonic() + within
        while self.total < target:
            if time.monotonic() > limit:
                raise TimeoutError(f"{self.total}/{target} handler calls after {within:.0f}s")
            self.check_alive()
            await asyncio.sleep(0.005)
        return time.time()

    async def finish(self) -> list[dict[str, Any]]:
        """Ask every process to stop; collect its report; end any that does not exit."""
        self.stop.set()
        self.go.set()  # a process still waiting for go returns at once
        limit = time.monotonic() + STOP_WAIT
        while len(self.reports) < len(self.procs) and time.monotonic() < limit:
            with contextlib.suppress(Exception):
                self.reports.append(await asyncio.to_thread(self.out.get, True, 1.0))
            if len(self.reports) < len(self.procs) and not any(p.is_alive() for p in self.procs):
                break
        for proc in self.procs:
            await asyncio.to_thread(proc.join, 5.0)
            if proc.is_alive():
                proc.kill()
                await asyncio.to_thread(proc.join, 5.0)
        return self.reports


# -- database helpers ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connect(schema: str | None = None) -> Any:
    options = f"-c search_path={schema}" if schema else ""
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True, options=options) as conn:
        yield conn


async def one(conn: psycopg.AsyncConnection[Any], query: Any, params: Sequence[Any] | None = None) -> Any:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return row[0] if row else None


class Schemas:
    """Unique schema names for this invocation; every one is dropped at the end."""

    def __init__(self) -> None:
        self.prefix = f"aj_scale_{os.getpid()}_"
        self.made: list[str] = []

    def new(self) -> str:
        name = f"{self.prefix}{len(self.made)}"
        self.made.append(name)
        return name

    async def drop(self, name: str) -> None:
        async with connect() as conn:
            await conn.execute("SET lock_timeout = '20s'")
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))

    async def drop_all(self) -> None:
        for name in self.made:
            try:
                await self.drop(name)
            except psycopg.Error as exc:
                print(f"could not drop schema {name}: {exc}", file=sys.stderr)


async def jobs_columns(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    cur = await conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'jobs'::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
    )
    return [r[0] for r in await cur.fetchall()]


def clone_statement(columns: list[str], finished: bool) -> sql.Composed:
    """``INSERT ... SELECT`` that clones the template row once per ``g`` in [%(lo)s, %(hi)s].

    Each clone gets its own version 7 id and a distinct ``run_at``/``created_at`` one µs apart, oldest
    first (``%(n)s`` - g µs before the template's), as a queue filled over time would hold;
    ``finished`` clones are completed jobs ``PRUNE_AGE`` old.
    """
    offset = "(%(n)s - g) * interval '1 microsecond'"
    overrides = {
        # A version 7 id stamped with the clone's created_at, as the engine makes them (job_ids.py).
        "job_id": (
            f"(lpad(to_hex((extract(epoch FROM t.created_at - {offset}) * 1000)::bigint), 12, '0') || '7' "
            "|| lpad(to_hex(g %% 4096), 3, '0') || '8' || substr(md5(random()::text), 1, 15))::uuid"
        ),
        "run_at": f"t.run_at - {offset}",
        "created_at": f"t.created_at - {offset}",
        "updated_at": f"t.updated_at - {offset}",
    }
    if finished:
        age = f"%(age)s::interval + {offset}"
        overrides |= {
            "status": "'completed'::job_status",
            "created_at": f"t.created_at - {age}",
            "run_at": f"t.run_at - {age}",
            "started_at": f"t.created_at - {age}",
            "completed_at": f"t.created_at - {age}",
            "updated_at": f"t.created_at - {age}",
            "attempts": "1",
            "progress": "100",
        }
    exprs = [sql.SQL(overrides[c]) if c in overrides else sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns]
    return sql.SQL(
        "INSERT INTO jobs ({}) SELECT {} FROM jobs AS t, generate_series(%(lo)s::int, %(hi)s::int) AS g "
        "WHERE t.tenant = %(tenant)s AND t.job_id = %(template)s"
    ).format(sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(exprs))


async def fill(schema: str, template: Any, n: int, *, finished: bool = False, parts: int = 2) -> None:
    """Clone the template row ``n`` times, on ``parts`` connections at once (the machine's cores)."""
    if n <= 0:
        return
    async with connect(schema) as conn:
        statement = clone_statement(await jobs_columns(conn), finished)
    bounds = [(n * i // parts + 1, n * (i + 1) // parts) for i in range(parts)]

    async def part(lo: int, hi: int) -> None:
        async with connect(schema) as conn:
            params = {"lo": lo, "hi": hi, "n": n + 1, "tenant": TENANT, "template": template, "age": PRUNE_AGE}
            await conn.execute(statement, params)

    await asyncio.gather(*(part(lo, hi) for lo, hi in bounds if hi >= lo))


async def settle(schema: str) -> None:
    """What a settled deployment's table looks like: vacuumed, analyzed; then a checkpoint."""
    async with connect(schema) as conn:
        await conn.execute("VACUUM (ANALYZE) jobs")
        await conn.execute("CHECKPOINT")


async def sizes(schema: str) -> dict[str, int]:
    """Bytes of the jobs table, of all its indexes, and of each index."""
    async with connect(schema) as conn:
        out = {
            "table": await one(conn, "SELECT pg_relation_size('jobs')"),
            "indexes": await one(conn, "SELECT pg_indexes_size('jobs')"),
        }
        cur = await conn.execute(
            "SELECT c.relname, pg_relation_size(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'jobs'::regclass ORDER BY c.relname"
        )
        out |= {f"index {name}": size for name, size in await cur.fetchall()}
    return out


async def table_stats(schema: str) -> dict[str, int]:
    """Tuple counters and status counts of the jobs table."""
    async with connect(schema) as conn:
        await asyncio.sleep(0.6)  # exited backends' statistics reach the shared counters
        cur = await conn.execute(
            "SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, n_tup_del, vacuum_count + autovacuum_count "
            "FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass"
        )
        row = await cur.fetchone()
        keys = ("live tuples", "dead tuples", "updates", "HOT updates", "deletes", "vacuums")
        out = dict(zip(keys, row or (), strict=False))
        cur = await conn.execute("SELECT status::text, count(*) FROM jobs GROUP BY status")
        out |= {f"status {s}": n for s, n in await cur.fetchall()}
    return out


def claim_params(query: str, batch: int) -> dict[str, Any]:
    """The parameters a plain worker (types noop and sleep, queue 'default', no caps) passes to ``claim_jobs``.

    Read from the query's own placeholders, so the plan is taken of whatever claim the engine has now;
    KeyError names a placeholder this table does not know yet.
    """
    known: dict[str, Any] = {
        "limit": batch,
        "tenants": batch,
        "after": "",
        "worker_id": "scale-explain",
        "lease": timedelta(seconds=30),
        "types": ["noop", "sleep"],
        "queues": ["default"],
        "type_queues": ["default", "default"],
        "capped_types": [],
        "type_room": [],
        "capped_queues": [],
        "queue_room": [],
        "full_tenants": [],
        "tenant_room": [],
        "tenant_cap": None,
    }
    return {name: known[name] for name in dict.fromkeys(re.findall(r"%\((\w+)\)s", query))}


async def claim_plan(schema: str, batch: int, bulk: bool = False) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the engine's own ``claim_jobs``, rolled back: a one-line summary."""
    from algajobs.db import connection_kwargs
    from algajobs.sql import QUERIES

    query = QUERIES["claim_jobs"]
    # The engine's own session settings (search_path, and jit=off where the engine sets it).
    options = connection_kwargs(settings_for(schema))["options"]
    try:
        params = claim_params(query, batch)
        if bulk:
            params |= {k: [*v, extra] for k, extra in (("types", "report"), ("queues", "bulk")) if (v := params.get(k))}
        async with (
            await psycopg.AsyncConnection.connect(DSN, autocommit=True, options=options) as conn,
            conn.transaction(force_rollback=True),
        ):
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params)
            (doc,) = await cur.fetchone() or (None,)
    except (psycopg.Error, KeyError) as exc:
        return f"explain failed: {type(exc).__name__}: {exc}"
    top = (json.loads(doc) if isinstance(doc, str) else doc)[0]
    scans = [
        f"{n['Node Type']}"
        + (f" using {n['Index Name']}" if "Index Name" in n else "")
        + f" ({n.get('Actual Loops', 1)}x)"
        for n in walk(top["Plan"])
        if n.get("Relation Name") == "jobs" and "Scan" in n["Node Type"]
    ]
    plan = top["Plan"]
    buffers = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    removed = sum(
        n.get("Rows Removed by Filter", 0) * n.get("Actual Loops", 1)
        for n in walk(plan)
        if n.get("Relation Name") == "jobs"
    )
    jit = top.get("JIT", {}).get("Timing", {}).get("Total")
    return (
        f"{' + '.join(dict.fromkeys(scans))}; {removed:,} jobs rows removed by filter; {buffers:,} buffers; "
        f"{top['Execution Time']:.2f} ms" + (f" (of which JIT {jit:.0f} ms)" if jit else "")
    )


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


async def count_completed_since(conn: psycopg.AsyncConnection[Any], since: float) -> int:
    query = "SELECT count(*) FROM jobs WHERE status = 'completed' AND completed_at >= to_timestamp(%s)"
    return int(await one(conn, query, [since]))


async def nth_completion(conn: psycopg.AsyncConnection[Any], since: float, n: int) -> float:
    """Epoch of the n-th completion recorded after ``since`` (the clock the table keeps)."""
    value = await one(
        conn,
        "SELECT extract(epoch FROM completed_at) FROM jobs WHERE status = 'completed' "
        "AND completed_at >= to_timestamp(%s) ORDER BY completed_at LIMIT 1 OFFSET %s",
        [since, n - 1],
    )
    return float(value) if value is not None else math.nan


async def window(conn: psycopg.AsyncConnection[Any], start: float, end: float) -> tuple[int, float]:
    """Completions recorded in [start, end) and the longest gap (s) between two of them (or the edges)."""
    cur = await conn.execute(
        "SELECT count(*), max(gap) FROM (SELECT extract(epoch FROM completed_at - lag(completed_at) "
        "OVER (ORDER BY completed_at)) AS gap FROM (SELECT completed_at FROM jobs WHERE status = 'completed' "
        "AND completed_at >= to_timestamp(%(a)s) AND completed_at < to_timestamp(%(b)s) "
        "UNION ALL SELECT to_timestamp(%(a)s) UNION ALL SELECT to_timestamp(%(b)s)) AS c) AS g",
        {"a": start, "b": end},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]) - 2, float(row[1] or 0.0)


# -- sections ----------------------------------------------------------------------------


class Bench:
    """Runs the sections; holds the spawn context, the schemas and every run."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.ctx = mp.get_context("spawn")
        self.schemas = Schemas()
        self.runs: list[Run] = []

    def spec(self, schema: str, concurrency: int | None = None) -> WorkerSpec:
        cfg = self.cfg
        return WorkerSpec(schema, concurrency or cfg.concurrency, cfg.batch, cfg.pool_size, cfg.hold)

    @contextlib.asynccontextmanager
    async def fresh(self, bulk: bool = False) -> Any:
        """A fresh, migrated schema and a (not started) runner on it; the schema is dropped after."""
        from algajobs import JobContext, JobRegistry, PostgresRunner

        registry = JobRegistry()

        @registry.handler("noop")
        async def noop(ctx: JobContext, data: Any) -> None:
            pass

        @registry.handler("sleep")
        async def sleep(ctx: JobContext, data: Any) -> None:
            pass

        @registry.handler("unserved")  # registered here to be scheduled; no worker process runs it
        async def unserved(ctx: JobContext, data: Any) -> None:
            pass

        if bulk:
            register_report(registry)

        schema = self.schemas.new()
        try:
            async with PostgresRunner(settings_for(schema, pool_size=2), registry) as runner:
                yield schema, runner
        finally:
            await self.schemas.drop(schema)

    async def backlog(
        self, runner: Any, schema: str, queued: int, finished: int = 0, unserved: int = 0, paused: int = 0
    ) -> None:
        """``queued`` due no-op jobs, cloned from one the engine wrote; also ``finished`` old completed ones,
        ``unserved`` jobs of a type no worker runs and ``paused`` ones in the paused queue 'bulk', all due
        before the no-op ones."""
        started = time.perf_counter()
        for name, n in (("unserved", unserved), ("report", paused), ("noop", queued)):
            if n == 0 and name != "noop":
                continue
            (template,) = await runner.schedule_jobs(name, [None], tenant_id=TENANT)
            await fill(schema, template.job_id, n)
            if name == "noop":
                await fill(schema, template.job_id, finished, finished=True)
            async with connect(schema) as conn:
                await conn.execute("DELETE FROM jobs WHERE tenant = %s AND job_id = %s", [TENANT, template.job_id])
        if paused:
            await runner.pause_queue("bulk", reason="bench/scale.py")
        took = time.perf_counter() - started
        others = f"{finished:,} finished + {unserved:,} unserved + {paused:,} paused"
        print(f"    filled {queued:,} queued + {others} in {took:.1f}s", flush=True)
        await settle(schema)

    async def drain(self, run: Run, queued: int, processes: int, unserved: int = 0, paused: int = -1) -> None:
        """``processes`` workers complete ``--jobs`` jobs from a backlog of ``queued``; sizes and plans around it.

        ``paused`` >= 0: the workers also serve queue 'bulk', paused and holding that many jobs.
        """
        cfg = self.cfg
        bulk = paused >= 0
        async with self.fresh(bulk) as (schema, runner):
            await self.backlog(runner, schema, queued, unserved=unserved, paused=max(paused, 0))
            run.sizes_before = await sizes(schema)
            run.plan_before = await claim_plan(schema, cfg.batch, bulk)
            spec = dataclasses.replace(self.spec(schema), bulk=bulk)
            workers = Workers(self.ctx, spec, processes, deadline=self.deadline())
            target = min(cfg.jobs, queued)
            try:
                go = await workers.start()
                await workers.wait_calls(target, self.deadline())
                async with connect(schema) as conn:
                    await self.flushed(conn, go, target)
                    end = await nth_completion(conn, go - 1, target)
            finally:
                reports = await workers.finish()
            run.figures["throughput_per_s"] = target / (end - go)
            run.sizes_after = await sizes(schema)
            run.table_stats = await table_stats(schema)
            run.plan_after = await claim_plan(schema, cfg.batch, bulk)
            self.account(run, reports, workers.total, queued + unserved + max(paused, 0), target)

    async def flushed(self, conn: psycopg.AsyncConnection[Any], since: float, target: int) -> None:
        limit = time.monotonic() + FLUSH_WAIT
        while await count_completed_since(conn, since - 1) < target:
            if time.monotonic() > limit:
                raise TimeoutError(f"fewer than {target} completions in the table after {FLUSH_WAIT:.0f}s")
            await asyncio.sleep(0.01)

    def deadline(self) -> float:
        return max(300.0, self.cfg.jobs / 20)  # generous: a blocked-backlog run on a busy machine is slow

    def account(self, run: Run, reports: list[dict[str, Any]], calls: int, queued: int, target: int) -> None:
        """All jobs accounted for: handler calls = completed rows, completed + queued = backlog, nothing stuck."""
        stats = run.table_stats
        completed, left = stats.get("status completed", 0), stats.get("status queued", 0)
        others = {
            k: v for k, v in stats.items() if k.startswith("status ") and k not in ("status completed", "status queued")
        }
        reported = sum(r.get("stats", {}).get("completed", 0) for r in reports)
        if calls and run.section != "memory" and all("cpu" in r for r in reports):
            run.figures["worker_cpu_us_per_job"] = sum(r["cpu"] for r in reports) / calls * 1e6
        run.accounted = f"{completed:,} completed (≥{target:,}), {left:,} queued, {calls:,} handler calls"
        for report in reports:
            run.warnings += report.get("warnings", [])
            if report.get("error") or report.get("failed"):
                run.problems.append(f"worker {report.get('pid')}: {report.get('error') or report.get('failed')}")
        expected = run.param if run.section == "processes" else 1
        if len(reports) != expected:
            run.problems.append(f"{len(reports)} worker report(s), expected {expected}")
        if not (completed == calls == reported and completed >= target and completed + left == queued and not others):
            run.problems.append(f"accounting: {run.accounted}, {reported} completed per workers, others {others}")

    # -- pruning

    async def prune(self, run: Run) -> None:
        """One worker drains; once warm, ``runner.prune`` deletes the finished set; throughput before vs during."""
        cfg = self.cfg
        async with self.fresh() as (schema, runner):
            await self.backlog(runner, schema, cfg.prune_queued, cfg.prune_finished)
            run.sizes_before = await sizes(schema)
            workers = Workers(self.ctx, self.spec(schema), 1, deadline=self.deadline() + 600)
            try:
                await workers.start()
                warm = await workers.wait_calls(cfg.jobs // 2, self.deadline())
                before = await workers.wait_calls(cfg.jobs * 3 // 2, self.deadline())
                pruned = await asyncio.wait_for(runner.prune(older_than=PRUNE_OLDER_THAN), 600)
                after = time.time()
                drained_during = workers.total >= cfg.prune_queued - 2 * cfg.concurrency
            finally:
                reports = await workers.finish()
            async with connect(schema) as conn:
                base_n, base_gap = await window(conn, warm, before)
                prune_n, prune_gap = await window(conn, before, after)
            run.figures |= {
                "baseline_per_s": base_n / (before - warm),
                "during_prune_per_s": prune_n / (after - before),
                "prune_seconds": after - before,
                "pruned_per_s": pruned / (after - before),
                "baseline_max_gap_ms": base_gap * 1000,
                "prune_max_gap_ms": prune_gap * 1000,
            }
            run.figures["ratio"] = run.figures["during_prune_per_s"] / run.figures["baseline_per_s"]
            run.sizes_after = await sizes(schema)
            run.table_stats = await table_stats(schema)
            self.account(run, reports, workers.total, cfg.prune_queued, cfg.jobs)
            if pruned != cfg.prune_finished:
                run.problems.append(f"pruned {pruned:,} rows, expected {cfg.prune_finished:,}")
            if drained_during:
                run.problems.append("the queue ran dry during the prune: raise --prune-queued")
            run.accounted += f", {pruned:,} pruned"

    # -- memory

    async def memory(self, run: Run) -> None:
        """RSS of one worker process: open; started and idle; holding its whole concurrency of sleeping handlers."""
        concurrency = run.param
        async with self.fresh() as (schema, runner):
            workers = Workers(self.ctx, self.spec(schema, concurrency), 1, deadline=cfg_hold_deadline(self.cfg))
            pid = 0
            try:
                workers.procs[0].start()
                if not await asyncio.to_thread(workers.ready[0].wait, READY_WAIT):
                    raise TimeoutError("worker not ready")
                pid = workers.procs[0].pid or 0
                run.figures["rss_open_mib"] = rss_mib(pid)
                workers.go.set()
                await asyncio.sleep(1.0)  # started: listener connected, first (empty) claim done
                run.figures["rss_idle_mib"] = rss_mib(pid)
                await runner.schedule_jobs("sleep", [None] * concurrency, tenant_id=TENANT)
                await workers.wait_calls(concurrency, 60)
                held = [rss_mib(pid)]
                for _ in range(5):
                    await asyncio.sleep(min(0.5, self.cfg.hold / 10))
                    held.append(rss_mib(pid))
                async with connect(schema) as conn:
                    processing = await one(conn, "SELECT count(*) FROM jobs WHERE status = 'processing'")
                run.figures["rss_holding_mib"] = max(held)
                idle = run.figures["rss_idle_mib"]
                run.figures["per_job_kib"] = (max(held) - idle) * 1024 / concurrency
                async with connect(schema) as conn:
                    await self.flushed(conn, 0, concurrency)
            finally:
                reports = await workers.finish()
            run.table_stats = await table_stats(schema)
            run.accounted = f"{processing} processing while held (of {concurrency})"
            if processing != concurrency:
                run.problems.append(f"{processing} jobs held, expected {concurrency}")
            self.account(run, reports, workers.total, concurrency, concurrency)


def cfg_hold_deadline(cfg: Config) -> float:
    return cfg.hold + 120.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


# -- orchestration ---------------------------------------------------------------------------


def rotated(values: list[int], round_no: int) -> list[int]:
    shift = (round_no - 1) % len(values)
    return values[shift:] + values[:shift]


def plan_runs(cfg: Config) -> list[tuple[str, int, int]]:
    """(section, parameter, round) in order: each round runs every size once, the order rotating."""
    out = []
    for r in range(1, cfg.rounds + 1):
        if "backlog" in cfg.sections:
            out += [("backlog", b, r) for b in rotated(cfg.backlogs, r)]
        if "processes" in cfg.sections:
            out += [("processes", p, r) for p in rotated(cfg.workers, r)]
        if "unserved" in cfg.sections:
            out += [("unserved", u, r) for u in rotated(cfg.unserved, r)]
        if "paused" in cfg.sections:
            out += [("paused", u, r) for u in rotated(cfg.unserved, r)]
        if "prune" in cfg.sections:
            out.append(("prune", cfg.prune_finished, r))
        if "memory" in cfg.sections:
            out += [("memory", c, r) for c in rotated(cfg.memory_concurrency, r)]
    return out


async def run_one(bench: Bench, run: Run) -> None:
    from algajobs import JobRegistry

    cfg = bench.cfg
    match run.section:
        case "backlog":
            await bench.drain(run, run.param, 1)
        case "processes":
            await bench.drain(run, cfg.process_backlog, run.param)
        case "unserved":
            await bench.drain(run, cfg.jobs, 1, unserved=run.param)
        case "paused" if not has_queues(JobRegistry()):
            run.accounted = "skipped: this engine has no named queues"
        case "paused":
            await bench.drain(run, cfg.jobs, 1, paused=run.param)
        case "prune":
            await bench.prune(run)
        case "memory":
            await bench.memory(run)


async def run_all(bench: Bench) -> None:
    planned = plan_runs(bench.cfg)
    for i, (section, param, round_no) in enumerate(planned, 1):
        run = Run(section, param, round_no, load_before=os.getloadavg()[0])
        print(f"[{i}/{len(planned)}] round {round_no}: {section} {param:,} ...", flush=True)
        try:
            await run_one(bench, run)
        except Exception as exc:  # one run's failure is a finding; the others go on
            run.problems.append(f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
        figures = ", ".join(f"{k}={fmt(v)}" for k, v in run.figures.items())
        print(f"    {figures}; {run.accounted}; load {run.load_before:.2f}", flush=True)
        for line in run.problems:
            print(f"    PROBLEM: {line}", flush=True)
        bench.runs.append(run)


# -- report -------------------------------------------------------------------------------------


def median(runs: list[Run], key: str) -> float:
    values = [r.figures[key] for r in runs if key in r.figures and not r.problems]
    return statistics.median(values) if values else math.nan


def spread(runs: list[Run], key: str) -> str:
    values = [r.figures[key] for r in runs if key in r.figures and not r.problems]
    return " / ".join(fmt(v) for v in values) or "n/a"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if math.isfinite(value) and math.isfinite(base) and base > 0 else "n/a"


def count(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1024**2:,.1f}"


def of(runs: list[Run], section: str, param: int | None = None) -> list[Run]:
    return [r for r in runs if r.section == section and (param is None or r.param == param)]


def last_ok(runs: list[Run]) -> Run | None:
    good = [r for r in runs if not r.problems]
    return good[-1] if good else (runs[-1] if runs else None)


def backlog_lines(cfg: Config, runs: list[Run]) -> list[str]:
    if not of(runs, "backlog"):
        return []
    base = median(of(runs, "backlog", min(cfg.backlogs)), "throughput_per_s")
    lines = [
        "## Backlog curve (1 worker process)",
        "",
        f"Throughput completing {cfg.jobs:,} no-op jobs from a table holding B queued jobs (each run's own "
        "fresh schema; sizes from the last good round).",
        "",
        "| backlog B | throughput (jobs/s, median) | each round | vs smallest B | worker CPU per job (µs) | table MB "
        "before → after | indexes MB before → after | dead tuples after (HOT updates) | jobs accounted for |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for b in cfg.backlogs:
        mine = of(runs, "backlog", b)
        r = last_ok(mine)
        if r is None:
            continue
        t = median(mine, "throughput_per_s")
        ok = sum(1 for x in mine if not x.problems)
        lines.append(
            f"| {b:,} | {fmt(t)} | {spread(mine, 'throughput_per_s')} | {ratio(t, base)} "
            f"| {fmt(median(mine, 'worker_cpu_us_per_job'))} "
            f"| {mib(r.sizes_before.get('table'))} → {mib(r.sizes_after.get('table'))} "
            f"| {mib(r.sizes_before.get('indexes'))} → {mib(r.sizes_after.get('indexes'))} "
            f"| {count(r.table_stats.get('dead tuples'))} ({count(r.table_stats.get('HOT updates'))} of "
            f"{count(r.table_stats.get('updates'))}) | {ok}/{len(mine)} runs exact; {r.accounted} |"
        )
    lines += ["", "Each index after the run (MB, before → after), last good round:", ""]
    lines += index_table(cfg.backlogs, [last_ok(of(runs, "backlog", b)) for b in cfg.backlogs])
    lines += ["", "The claim query (`claim_jobs`, `EXPLAIN (ANALYZE, BUFFERS)`, rolled back), last good round:", ""]
    lines += ["| backlog B | before the drain | after the drain |", "| ---: | --- | --- |"]
    for b in cfg.backlogs:
        r = last_ok(of(runs, "backlog", b))
        if r is not None:
            lines.append(f"| {b:,} | {r.plan_before} | {r.plan_after} |")
    return [*lines, ""]


def index_table(params: list[int], picked: list[Run | None]) -> list[str]:
    names = sorted({k for r in picked if r for k in r.sizes_after if k.startswith("index ")})
    lines = ["| index | " + " | ".join(f"B={p:,}" for p in params) + " |", "| --- |" + " ---: |" * len(params)]
    for name in names:
        cells = [f"{mib(r.sizes_before.get(name))} → {mib(r.sizes_after.get(name))}" if r else "n/a" for r in picked]
        lines.append(f"| {name.removeprefix('index ')} | " + " | ".join(cells) + " |")
    return lines


def process_lines(cfg: Config, runs: list[Run]) -> list[str]:
    if not of(runs, "processes"):
        return []
    base = median(of(runs, "processes", min(cfg.workers)), "throughput_per_s")
    lines = [
        "## Worker-process curve",
        "",
        f"Throughput completing {cfg.jobs:,} no-op jobs from a backlog of {cfg.process_backlog:,}, with P worker "
        f"processes (each concurrency {cfg.concurrency}, batch {cfg.batch}, pool {cfg.pool_size}); the machine has "
        f"{os.cpu_count()} cores, shared with PostgreSQL.",
        "",
        "| processes P | throughput (jobs/s, median) | each round | vs P=1 | workers' CPU per job (µs) "
        "| dead tuples after | jobs accounted for |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for p in cfg.workers:
        mine = of(runs, "processes", p)
        r = last_ok(mine)
        if r is None:
            continue
        t = median(mine, "throughput_per_s")
        ok = sum(1 for x in mine if not x.problems)
        lines.append(
            f"| {p} | {fmt(t)} | {spread(mine, 'throughput_per_s')} | {ratio(t, base)} "
            f"| {fmt(median(mine, 'worker_cpu_us_per_job'))} "
            f"| {count(r.table_stats.get('dead tuples'))} | {ok}/{len(mine)} runs exact; {r.accounted} |"
        )
    return [*lines, ""]


BLOCKED = {
    "unserved": (
        "## Backlog of a type no worker runs",
        "queued behind U jobs (due earlier, same tenant and priority) of a type it does not run, as during a "
        "rolling deploy that adds the handler later",
    ),
    "paused": (
        "## Backlog in a paused queue",
        "while U jobs (due earlier, same tenant and priority) of type 'report' wait in queue 'bulk', which the "
        "worker serves and `runner.pause_queue('bulk')` paused (engines with named queues only)",
    ),
}


def blocked_lines(cfg: Config, runs: list[Run], section: str) -> list[str]:
    """Jobs the claim cannot take, ahead of those it can: the claim must not read them all each time."""
    if not of(runs, section):
        return []
    base = median(of(runs, section, min(cfg.unserved)), "throughput_per_s")
    title, what = BLOCKED[section]
    lines = [
        title,
        "",
        f"Throughput of one worker process completing {cfg.jobs:,} no-op jobs {what}.",
        "",
        f"| U | throughput (jobs/s, median) | each round | vs U={min(cfg.unserved):,} | claim plan before the drain "
        "| jobs accounted for |",
        "| ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for u in cfg.unserved:
        mine = of(runs, section, u)
        r = last_ok(mine)
        if r is None:
            continue
        t = median(mine, "throughput_per_s")
        ok = sum(1 for x in mine if not x.problems)
        lines.append(
            f"| {u:,} | {fmt(t)} | {spread(mine, 'throughput_per_s')} | {ratio(t, base)} | {r.plan_before} "
            f"| {ok}/{len(mine)} runs exact; {r.accounted} |"
        )
    return [*lines, ""]


PRUNE_FIGURES = (
    ("baseline_per_s", "throughput just before the prune (jobs/s)"),
    ("during_prune_per_s", "throughput while the prune runs (jobs/s)"),
    ("ratio", "during / before"),
    ("baseline_max_gap_ms", "longest gap between completions before (ms)"),
    ("prune_max_gap_ms", "longest gap between completions during (ms)"),
    ("prune_seconds", "prune duration (s)"),
    ("pruned_per_s", "rows pruned per second"),
)


def prune_lines(cfg: Config, runs: list[Run]) -> list[str]:
    mine = of(runs, "prune")
    if not mine:
        return []
    r = last_ok(mine)
    lines = [
        "## Pruning while a worker runs",
        "",
        f"One worker process drains {cfg.prune_queued:,} queued no-op jobs from a table that also holds "
        f"{cfg.prune_finished:,} completed jobs {PRUNE_AGE.days} days old. After {cfg.jobs * 3 // 2:,} completions, "
        f"this process calls `runner.prune(older_than=timedelta(days={PRUNE_OLDER_THAN.days}))` (batches of 1,000 "
        f"rows). 'Before' is the window from the {cfg.jobs // 2:,}th to the {cfg.jobs * 3 // 2:,}th handler call.",
        "",
        "| figure | median | each round |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {fmt(median(mine, key))} | {spread(mine, key)} |" for key, label in PRUNE_FIGURES),
        "",
    ]
    if r is not None:
        lines += [
            f"Table after the run (last good round): {mib(r.sizes_before.get('table'))} → "
            f"{mib(r.sizes_after.get('table'))} MB, indexes {mib(r.sizes_before.get('indexes'))} → "
            f"{mib(r.sizes_after.get('indexes'))} MB, {count(r.table_stats.get('dead tuples'))} dead tuples; "
            f"{r.accounted}.",
            "",
        ]
    return lines


def memory_lines(cfg: Config, runs: list[Run]) -> list[str]:
    if not of(runs, "memory"):
        return []
    lines = [
        "## Memory of a worker process",
        "",
        f"RSS (`/proc/<pid>/status` VmRSS) of one worker process: runner open; started and idle; holding its whole "
        f"concurrency C of handlers that `await asyncio.sleep({cfg.hold:g})` (the largest of 6 samples). C=20 is "
        "the default `JOB_WORKER_CONCURRENCY`.",
        "",
        "| concurrency C | RSS open (MiB) | RSS started, idle (MiB) | RSS holding C jobs (MiB) "
        "| per held job (KiB) | each round (holding) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cfg.memory_concurrency:
        mine = of(runs, "memory", c)
        lines.append(
            f"| {c:,} | {median(mine, 'rss_open_mib'):.1f} | {median(mine, 'rss_idle_mib'):.1f} "
            f"| {median(mine, 'rss_holding_mib'):.1f} | {median(mine, 'per_job_kib'):.1f} "
            f"| {spread(mine, 'rss_holding_mib')} |"
        )
    return [*lines, ""]


def each_run_lines(runs: list[Run]) -> list[str]:
    lines = ["## Each run", "", "| round | section | parameter | figures | load avg at start | problems |"]
    lines.append("| ---: | --- | ---: | --- | ---: | --- |")
    for r in runs:
        figures = ", ".join(f"{k} {fmt(v)}" for k, v in r.figures.items())
        lines.append(
            f"| {r.round} | {r.section} | {r.param:,} | {figures} | {r.load_before:.2f} | {'; '.join(r.problems)} |"
        )
    warned = [(r, w) for r in runs for w in dict.fromkeys(r.warnings)]
    lines += ["", "Warnings logged by worker processes:", ""]
    lines += [f"- round {r.round} {r.section} {r.param:,}: {w}" for r, w in warned] or ["- none"]
    return [*lines, ""]


def engine_fingerprint() -> str:
    """sha256 of the imported engine's SQL (queries and migrations): which claim query these figures measured."""
    import algajobs

    src = Path(algajobs.__file__).parent
    digest = hashlib.sha256()
    for path in [src / "sql" / "queries.sql", *sorted((src / "sql" / "migrations").glob("*.sql"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def report(cfg: Config, runs: list[Run], info: dict[str, str], took: float, fingerprints: tuple[str, str]) -> str:
    problems = [f"round {r.round} {r.section} {r.param:,}: {p}" for r in runs for p in r.problems]
    loads = [r.load_before for r in runs]
    lines = [
        f"# algajobs PostgreSQL engine at scale, {dt.date.today().isoformat()}" + (" (quick run)" if cfg.quick else ""),
        "",
        f"`{' '.join(['python', *sys.argv])}` ({took / 60:.1f} min). Each figure is the median of {cfg.rounds} "
        "round(s) in this one invocation (runs with a problem left out); the order of sizes rotates per round. "
        "Definitions: the module docstring of `bench/scale.py`.",
        "",
        *([f"Note: {cfg.note}", ""] if cfg.note else []),
        f"**Shared machine**: taken while other people ran tests on the same {os.cpu_count()}-core machine and "
        f"PostgreSQL server (1-min load average at the start of a run: {min(loads, default=0):.2f} to "
        f"{max(loads, default=0):.2f}); compare figures within this file, not across machines. The server runs "
        f"with autovacuum={info.get('autovacuum', '?')}, so no vacuum runs during or between the runs: dead tuples "
        "and index growth below are what the workers leave behind.",
        "",
        *backlog_lines(cfg, runs),
        *process_lines(cfg, runs),
        *blocked_lines(cfg, runs, "unserved"),
        *blocked_lines(cfg, runs, "paused"),
        *prune_lines(cfg, runs),
        *memory_lines(cfg, runs),
        "## Checks",
        "",
        *([f"- {p}" for p in problems] or ["- none: every run accounted for every job"]),
        *(
            [f"- WARN the engine's SQL changed during the run ({fingerprints[0]} → {fingerprints[1]})"]
            if fingerprints[0] != fingerprints[1]
            else []
        ),
        "",
        *each_run_lines(runs),
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        f"- engine SQL fingerprint (sha256 of queries.sql + migrations): {fingerprints[1]}",
        "",
    ]
    return "\n".join(lines)


def print_summary(text: str) -> None:
    """The markdown's tables, on the terminal."""
    keep = False
    for line in text.splitlines():
        if line.startswith("## Each run"):
            break
        keep = keep or line.startswith("## ")
        if keep:
            print(line)


# -- main ------------------------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    return [int(x) for x in text.replace("_", "").split(",") if x.strip()]


QUICK = {
    "backlogs": [2000, 20000],
    "workers": [1, 2],
    "jobs": 2000,
    "rounds": 1,
    "process_backlog": 20000,
    "unserved": [0, 20000],
    "prune_finished": 50000,
    "prune_queued": 40000,
    "memory_concurrency": [20],
    "hold": 2.0,
}


def parse_args(argv: list[str] | None = None) -> tuple[Config, Path]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--backlogs", type=ints, default=[10_000, 100_000, 1_000_000], help="queued jobs, comma-separated")
    p.add_argument("--workers", type=ints, default=[1, 2, 4], help="worker processes, comma-separated")
    p.add_argument("--jobs", type=int, default=10_000, help="jobs completed per measured run")
    p.add_argument("--rounds", type=int, default=3, help="each figure is the median of this many rounds")
    p.add_argument("--concurrency", type=int, default=100, help="worker concurrency (as bench/pg_queues.py)")
    p.add_argument("--batch", type=int, default=100, help="fetch batch size (as bench/pg_queues.py)")
    p.add_argument("--pool-size", type=int, default=10, help="connections per worker process")
    p.add_argument("--process-backlog", type=int, default=100_000, help="queued jobs for the process curve")
    p.add_argument(
        "--unserved", type=ints, default=[0, 100_000, 1_000_000], help="jobs of a type no worker runs, queued ahead"
    )
    p.add_argument("--prune-finished", type=int, default=1_000_000, help="finished jobs the prune deletes")
    p.add_argument("--prune-queued", type=int, default=400_000, help="queued jobs drained while pruning")
    p.add_argument("--memory-concurrency", type=ints, default=[20, 100, 1000], help="concurrencies for RSS")
    p.add_argument("--hold", type=float, default=5.0, help="seconds each memory-test handler sleeps")
    p.add_argument("--sections", default="backlog,processes,unserved,paused,prune,memory", help="which sections to run")
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, one round (~1-2 min)")
    p.add_argument("--note", default="", help="a line for the results file (e.g. which tree was measured)")
    p.add_argument("--out", type=Path, help="markdown results file (default bench/results/scale-<date>.md)")
    args = p.parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k not in ("out", "sections")}
    if args.quick:  # flags given explicitly still win
        values = QUICK | {k: v for k, v in values.items() if k not in QUICK or v != p.get_default(k)}
    cfg = Config(**values, sections=args.sections.split(","))
    if cfg.prune_finished > 1_000_000:
        p.error("--prune-finished: runner.prune deletes at most 1,000,000 rows per call")
    suffix = "-quick" if cfg.quick else ""
    return cfg, args.out or RESULTS_DIR / f"scale-{dt.date.today().isoformat()}{suffix}.md"


async def main(cfg: Config) -> tuple[str, bool]:
    """Run the sections; return the markdown report and whether any run had a problem."""
    logging.basicConfig(level=logging.WARNING)
    server = await server_settings()
    async with connect() as conn:
        server["autovacuum"] = str(await one(conn, "SHOW autovacuum"))
    import algajobs

    info = machine_info("asyncio (default)", server)
    info["autovacuum"] = server["autovacuum"]
    info["algajobs imported from"] = str(Path(algajobs.__file__).parent)
    before = engine_fingerprint()
    bench = Bench(cfg)
    started = time.monotonic()
    try:
        await run_all(bench)
    finally:
        await bench.schemas.drop_all()
    text = report(cfg, bench.runs, info, time.monotonic() - started, (before, engine_fingerprint()))
    return text, any(r.problems for r in bench.runs)


def entry(argv: list[str] | None = None) -> int:
    cfg, out = parse_args(argv)
    text, failed = asyncio.run(main(cfg))
    print()
    print_summary(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(entry())
