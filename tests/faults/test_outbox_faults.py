"""The outbox under faults: a relaying worker SIGKILLed and Temporal dying while transactions commit jobs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from algajobs import FailoverRunner, RunnerType, Settings
from tests.faults.app import registry
from tests.faults.conftest import ROOT, scalar
from tests.faults.temporal_tools import DevServer
from tests.faults.test_failover import all_finished, failover_settings


def spawn_worker(conf: Settings, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """An `algajobs worker` (failover mode: it relays the outbox and runs both engines' jobs)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": conf.database_url,
        "JOB_SCHEMA": conf.schema_name,
        "JOB_RUNNER_TYPE": "temporal",
        "TEMPORAL_ADDRESS": conf.temporal_address,
        "TEMPORAL_JOB_TASK_QUEUE": conf.temporal_task_queue,
        "JOB_WORKER_CONCURRENCY": "20",
        "JOB_POLL_INTERVAL": "0.5",
        "JOB_LEASE_SECONDS": "3",
        "JOB_CIRCUIT_CALL_TIMEOUT": "1",
        "JOB_CIRCUIT_COOL_DOWN": "1",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "algajobs", "worker", "--registry", "tests.faults.app:registry"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def test_outbox_jobs_run_once_through_a_killed_relay_and_a_dying_cluster(
    effects: Settings, tmp_path: Path
) -> None:
    """400 jobs from 4 writers in 200 transactions all run: a relaying worker SIGKILLed, Temporal dies and returns."""
    total = 400
    server = DevServer(tmp_path)
    await server.start()
    conf = failover_settings(effects, server.address, circuit_call_timeout=1, circuit_cool_down=1)
    workers = [spawn_worker(conf, tmp_path, "a"), spawn_worker(conf, tmp_path, "b")]
    try:
        async with FailoverRunner(conf, registry) as runner:  # schedules only: this process relays nothing
            temporal_down = asyncio.Event()
            halves_written = 0

            async def writer() -> None:
                nonlocal halves_written
                async with await psycopg.AsyncConnection.connect(conf.database_url) as conn:
                    for half in range(2):
                        if half == 1:  # the second half is committed while Temporal is down
                            halves_written += 1
                            await asyncio.wait_for(temporal_down.wait(), 60)
                        for _ in range(total // 16):
                            async with conn.transaction():
                                for _ in range(2):
                                    await runner.schedule_job("effect-idempotent", {}, tenant_id="t1", connection=conn)
                            await asyncio.sleep(0.02)

            async def chaos() -> None:
                await asyncio.sleep(0.5)
                workers[0].send_signal(signal.SIGKILL)  # mid-batch: its leased outbox rows must not be lost
                for _ in range(600):  # bounded: until every writer finished its first half
                    if halves_written == 4:
                        break
                    await asyncio.sleep(0.05)
                server.kill()
                temporal_down.set()
                await asyncio.sleep(2.0)
                await server.start()

            await asyncio.gather(chaos(), *(writer() for _ in range(4)))
            await all_finished(runner, total, within=90)
            jobs = await runner.list_jobs(tenant_id="t1", limit=1000)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        server.close()
    # Each outbox row became exactly one job and every job completed. A job the SIGKILL caught mid-run
    # runs again (at-least-once), so the handler is idempotent and effects are counted per job.
    assert await scalar(effects, "SELECT count(*) FROM effects") == total
    assert await scalar(effects, "SELECT count(*) FROM jobs WHERE status = 'pending'") == 0
    # Rows committed while Temporal was down were relayed to PostgreSQL (the first half may have gone
    # either way: a worker still connecting to Temporal relays to PostgreSQL too).
    assert any(j.runner_type is RunnerType.POSTGRES for j in jobs)
