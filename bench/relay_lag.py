"""Outbox relay lag: time from the caller's COMMIT to its job's workflow being started.

A job scheduled with ``connection=`` on Temporal is a pending row until a
relay (woken by the commit's NOTIFY) starts its workflow and marks it
queued. This measures commit → row no longer pending, sampled by a tight
poll (0.5 ms) from the bench process, on a local dev server. Target: p50
under 10 ms.

Run: ``python bench/relay_lag.py [--samples 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid
from typing import Any

import psycopg
from temporalio.testing import WorkflowEnvironment

from algajobs import FailoverRunner, JobContext, JobRegistry, Settings
from algajobs.testing import temporal_cli_path

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description="outbox relay lag after commit")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: Any) -> None:
        return None

    schema = f"aj_bench_{uuid.uuid4().hex[:8]}"
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1")
    async with env:
        settings = Settings.load(database_url=DSN, schema_name=schema, temporal_task_queue=f"lag-{uuid.uuid4()}")
        lags: list[float] = []
        async with FailoverRunner(settings, registry, client=env.client) as runner:
            await runner.start()
            async with (
                await psycopg.AsyncConnection.connect(DSN) as conn,
                await psycopg.AsyncConnection.connect(
                    DSN, autocommit=True, options=f"-c search_path={schema}"
                ) as probe,
            ):
                for _ in range(args.samples):
                    async with conn.transaction():
                        job = await runner.schedule_job("noop", None, tenant_id="bench", connection=conn)
                    committed = time.perf_counter()
                    for _ in range(20_000):  # bounded: 10 s of 0.5 ms polls
                        cur = await probe.execute("SELECT status FROM jobs WHERE job_id = %s", [job.job_id])
                        row = await cur.fetchone()
                        if row is not None and row[0] != "pending":
                            break
                        await asyncio.sleep(0.0005)
                    lags.append((time.perf_counter() - committed) * 1000)
                    await asyncio.sleep(0.01)
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as admin:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    print(f"{args.samples} outbox jobs, commit -> workflow started (row no longer pending)")
    print(f"relay lag p50 {pct(lags, 50):.1f} ms, p99 {pct(lags, 99):.1f} ms (target p50 < 10 ms)")


if __name__ == "__main__":
    asyncio.run(main())
