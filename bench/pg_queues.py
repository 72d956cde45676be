"""Benchmark algajobs' PostgreSQL engine against procrastinate and PgQueuer.

Each system gets a fresh database on the same server, the same no-op handler
and comparable concurrency. Measured in one run:

- enqueue rate, one job per call and in batches;
- end-to-end throughput draining N queued jobs (until every job is recorded
  finished in the system's own tables);
- pickup latency p50/p99: a job scheduled to an idle, listening worker, from
  just before the enqueue call to the handler's first line.

Run: ``python bench/pg_queues.py [--jobs 10000] [--latency-samples 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONCURRENCY = 100
BATCH = 100


@dataclass
class Result:
    name: str
    figures: dict[str, float] = field(default_factory=dict)


async def fresh_database(name: str) -> str:
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


async def latency_samples(
    enqueue: Callable[[], Awaitable[Any]], picked: asyncio.Queue[float], samples: int
) -> list[float]:
    out = []
    for _ in range(samples):
        await asyncio.sleep(0.02)  # let the worker go idle and wait on LISTEN
        started = time.perf_counter()
        await enqueue()
        out.append((await asyncio.wait_for(picked.get(), 10) - started) * 1000)
    return out


# -- algajobs ------------------------------------------------------------------


async def bench_algajobs(jobs: int, samples: int) -> Result:
    from algajobs import JobContext, JobRegistry, JobStatus, PostgresRunner, Settings

    dsn = await fresh_database("aj_bench_algajobs")
    registry = JobRegistry()
    done = asyncio.Event()
    count = 0
    picked: asyncio.Queue[float] = asyncio.Queue()
    target = jobs

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        nonlocal count
        count += 1
        if count >= target:
            done.set()

    @registry.handler("ping")
    async def ping(ctx: JobContext, data: Any) -> None:
        picked.put_nowait(time.perf_counter())

    settings = Settings.load(
        database_url=dsn,
        runner_type="postgres",
        worker_concurrency=CONCURRENCY,
        fetch_batch_size=BATCH,
        pool_size=10,
    )
    result = Result("algajobs")
    async with PostgresRunner(settings, registry) as runner:
        n_single = min(jobs, 2000)
        elapsed = await timed(lambda: _loop(n_single, lambda: runner.schedule_job("noop", None, tenant_id="t")))
        result.figures["enqueue_single_per_s"] = n_single / elapsed
        remaining = jobs - n_single
        elapsed = await timed(
            lambda: _batches(remaining, lambda n: runner.schedule_jobs("noop", [None] * n, tenant_id="t"))
        )
        result.figures["enqueue_batch_per_s"] = remaining / elapsed if remaining else 0.0

        started = time.perf_counter()
        await runner.start()
        await asyncio.wait_for(done.wait(), 300)
        worker = runner.worker
        assert worker is not None
        await worker.stop()  # flushes the last completions to the table
        result.figures["throughput_per_s"] = jobs / (time.perf_counter() - started)
        counts = await runner.count_jobs_by_status(tenant_id="t")
        result.figures["accounted"] = counts[JobStatus.COMPLETED]

    async with PostgresRunner(settings, registry) as runner:
        await runner.start()
        await asyncio.sleep(0.5)
        lat = await latency_samples(lambda: runner.schedule_job("ping", None, tenant_id="t"), picked, samples)
    result.figures["latency_p50_ms"] = percentile(lat, 50)
    result.figures["latency_p99_ms"] = percentile(lat, 99)
    return result


async def _loop(n: int, call: Callable[[], Awaitable[Any]]) -> None:
    for _ in range(n):
        await call()


async def _batches(total: int, call: Callable[[int], Awaitable[Any]], size: int = 1000) -> None:
    while total > 0:
        n = min(size, total)
        await call(n)
        total -= n


# -- procrastinate ---------------------------------------------------------------


async def bench_procrastinate(jobs: int, samples: int) -> Result:
    import procrastinate

    dsn = await fresh_database("aj_bench_procrastinate")
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    picked: asyncio.Queue[float] = asyncio.Queue()

    @app.task(name="noop")
    async def noop() -> None:
        return None

    @app.task(name="ping")
    async def ping() -> None:
        picked.put_nowait(time.perf_counter())

    result = Result("procrastinate")
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        n_single = min(jobs, 2000)
        elapsed = await timed(lambda: _loop(n_single, noop.defer_async))
        result.figures["enqueue_single_per_s"] = n_single / elapsed
        remaining = jobs - n_single
        elapsed = await timed(lambda: _batches(remaining, lambda n: noop.batch_defer_async(*([{}] * n))))
        result.figures["enqueue_batch_per_s"] = remaining / elapsed if remaining else 0.0

        started = time.perf_counter()
        await app.run_worker_async(concurrency=CONCURRENCY, wait=False, install_signal_handlers=False)
        result.figures["throughput_per_s"] = jobs / (time.perf_counter() - started)
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
            row = await cur.fetchone()
            result.figures["accounted"] = row[0] if row else 0

        worker = asyncio.create_task(app.run_worker_async(concurrency=CONCURRENCY, install_signal_handlers=False))
        await asyncio.sleep(0.5)
        lat = await latency_samples(ping.defer_async, picked, samples)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    result.figures["latency_p50_ms"] = percentile(lat, 50)
    result.figures["latency_p99_ms"] = percentile(lat, 99)
    return result


# -- PgQueuer --------------------------------------------------------------------


async def bench_pgqueuer(jobs: int, samples: int) -> Result:
    from pgqueuer import PgQueuer, PsycopgDriver, Queries
    from pgqueuer.models import Job
    from pgqueuer.types import QueueExecutionMode

    dsn = await fresh_database("aj_bench_pgqueuer")
    result = Result("pgqueuer")
    picked: asyncio.Queue[float] = asyncio.Queue()

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True)

    producer = await connect()
    queries = Queries(PsycopgDriver(producer))
    await queries.install()

    def make_app(conn: psycopg.AsyncConnection[Any]) -> Any:
        pgq = PgQueuer(PsycopgDriver(conn))

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            return None

        @pgq.entrypoint("ping")
        async def ping(job: Job) -> None:
            picked.put_nowait(time.perf_counter())

        return pgq

    n_single = min(jobs, 2000)
    elapsed = await timed(lambda: _loop(n_single, lambda: queries.enqueue("noop", None)))
    result.figures["enqueue_single_per_s"] = n_single / elapsed
    remaining = jobs - n_single
    elapsed = await timed(lambda: _batches(remaining, lambda n: queries.enqueue(["noop"] * n, [None] * n, [0] * n)))
    result.figures["enqueue_batch_per_s"] = remaining / elapsed if remaining else 0.0

    consumer = await connect()
    pgq = make_app(consumer)
    started = time.perf_counter()
    await pgq.run(
        batch_size=BATCH,
        mode=QueueExecutionMode.drain,
        max_concurrent_tasks=max(CONCURRENCY, 2 * BATCH),
        dequeue_timeout=timedelta(seconds=1),
    )
    result.figures["throughput_per_s"] = jobs / (time.perf_counter() - started)
    cur = await producer.execute("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
    row = await cur.fetchone()
    result.figures["accounted"] = row[0] if row else 0
    await consumer.close()

    consumer = await connect()
    pgq = make_app(consumer)
    worker = asyncio.create_task(pgq.run(batch_size=BATCH, max_concurrent_tasks=max(CONCURRENCY, 2 * BATCH)))
    await asyncio.sleep(0.5)
    lat = await latency_samples(lambda: queries.enqueue("ping", None), picked, samples)
    pgq.shutdown.set()
    await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), 30)
    await consumer.close()
    await producer.close()
    result.figures["latency_p50_ms"] = percentile(lat, 50)
    result.figures["latency_p99_ms"] = percentile(lat, 99)
    return result


# -- report ------------------------------------------------------------------------

LOWER_IS_BETTER = {"latency_p50_ms", "latency_p99_ms"}


def report(results: list[Result], jobs: int) -> None:
    ours = results[0]
    peers = results[1:]
    names = [
        "enqueue_single_per_s",
        "enqueue_batch_per_s",
        "throughput_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "accounted",
    ]
    header = f"{'figure':<22}" + "".join(f"{r.name:>15}" for r in results)
    header += "".join(f"{'aj/' + p.name:>18}" for p in peers)
    print(f"\n{jobs} no-op jobs, concurrency {CONCURRENCY}, batch {BATCH}")
    print(header)
    for name in names:
        row = f"{name:<22}" + "".join(f"{r.figures.get(name, float('nan')):>15.1f}" for r in results)
        for peer in peers:
            theirs = peer.figures.get(name, 0.0)
            ratio = ours.figures.get(name, 0.0) / theirs if theirs else float("nan")
            row += f"{ratio:>18.3f}"
        print(row)
    best_peer = max(p.figures["throughput_per_s"] for p in peers)
    print(f"\nthroughput vs best peer: {ours.figures['throughput_per_s'] / best_peer:.2f}x (target >= 1.5x)")
    print(f"pickup latency p50: {ours.figures['latency_p50_ms']:.2f} ms (target < 5 ms)")
    print(f"all jobs accounted for: {int(ours.figures['accounted']) == jobs}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--only", choices=["algajobs", "procrastinate", "pgqueuer"], action="append")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = []
    benches = {"algajobs": bench_algajobs, "procrastinate": bench_procrastinate, "pgqueuer": bench_pgqueuer}
    for name, bench in benches.items():
        if args.only and name not in args.only and name != "algajobs":
            continue
        print(f"running {name} ...", flush=True)
        results.append(await bench(args.jobs, args.latency_samples))
    report(results, args.jobs)


if __name__ == "__main__":
    asyncio.run(main())
