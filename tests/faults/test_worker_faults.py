"""Kill, terminate and restart things under a running worker; nothing is lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from typing import Any

from algajobs import JobStatus, PostgresRunner, Settings
from tests.faults.conftest import WorkerFactory, scalar
from tests.faults.pgcluster import PgCluster
from tests.helpers import eventually


async def wait_started(settings: Settings, count: int, within: float = 15.0) -> None:
    """Wait until ``count`` handler runs have begun."""
    await eventually(
        lambda: scalar(settings, "SELECT count(*) FROM effect_starts"), lambda n: n >= count, within=within
    )


async def wait_exit(proc: subprocess.Popen[bytes], within: float) -> int:
    """Wait for a subprocess to exit without blocking the loop."""
    code = await eventually(lambda: asyncio.sleep(0, result=proc.poll()), lambda c: c is not None, within=within)
    assert code is not None
    return code


async def test_sigkilled_worker_job_runs_again_after_lease(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """A job held by a SIGKILLed worker returns after its lease, runs again and completes once."""
    job = await effects_runner.schedule_job("effect", {"sleep": 3}, tenant_id="t1")
    first = spawn_worker()
    await wait_started(settings, 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    info = await effects_runner.get_job_status(job.job_id, tenant_id="t1")
    assert info.status is JobStatus.PROCESSING
    spawn_worker()
    done = await eventually(
        lambda: effects_runner.get_job_status(job.job_id, tenant_id="t1"),
        lambda i: i.status.is_finished,
        within=30,
    )
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)
    assert await scalar(settings, "SELECT count(*) FROM effects") == 1


async def test_sigkilled_worker_after_a_once_step_does_not_apply_it_again(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Killed after its once-step committed: the next run finds the step done and completes without the effect."""
    job = await effects_runner.schedule_job("effect-once", {"sleep": 3}, tenant_id="t1")
    first = spawn_worker()
    await eventually(lambda: scalar(settings, "SELECT count(*) FROM effects"), lambda n: n == 1, within=15)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    spawn_worker()
    done = await eventually(
        lambda: effects_runner.get_job_status(job.job_id, tenant_id="t1"),
        lambda i: i.status.is_finished,
        within=30,
    )
    assert (done.status, done.attempts, done.result) == (JobStatus.COMPLETED, 2, "applied by attempt 1")
    assert await scalar(settings, "SELECT count(*) FROM effect_starts") == 2
    assert await scalar(settings, "SELECT count(*) FROM effects") == 1


async def test_sigterm_lets_in_flight_jobs_finish(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """On SIGTERM the worker stops fetching, finishes running jobs and exits 0."""
    for _ in range(5):
        await effects_runner.schedule_job("effect", {"sleep": 1}, tenant_id="t1")
    proc = spawn_worker(JOB_SHUTDOWN_GRACE=20)
    await wait_started(settings, 5)
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc, 30) == 0
    counts = await effects_runner.count_jobs_by_status(tenant_id="t1")
    assert counts[JobStatus.COMPLETED] == 5
    assert counts[JobStatus.PROCESSING] == 0


async def test_sigterm_past_grace_hands_jobs_back(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Jobs still running when the grace period ends go back to the queue, attempt unspent."""
    for _ in range(3):
        await effects_runner.schedule_job("effect", {"sleep": 60}, tenant_id="t1")
    proc = spawn_worker(JOB_SHUTDOWN_GRACE=0.3)
    await wait_started(settings, 3)
    proc.send_signal(signal.SIGTERM)
    assert await wait_exit(proc, 30) == 0
    jobs = await effects_runner.list_jobs(tenant_id="t1")
    assert [(j.status, j.attempts) for j in jobs] == [(JobStatus.QUEUED, 0)] * 3


async def test_worker_survives_postgres_restart(
    own_postgres: PgCluster, effects_runner: PostgresRunner, spawn_worker: WorkerFactory, own_settings: Settings
) -> None:
    """A running worker reconnects after PostgreSQL restarts; every job completes exactly once."""
    spawn_worker(JOB_WORKER_CONCURRENCY=10)
    for _ in range(40):
        await effects_runner.schedule_job("effect", {"sleep": 0.2}, tenant_id="t1")
    await wait_started(own_settings, 5)
    await asyncio.to_thread(own_postgres.restart)
    for _ in range(40):
        await effects_runner.schedule_job("effect", {"sleep": 0.05}, tenant_id="t1")
    await eventually(
        lambda: effects_runner.count_jobs_by_status(tenant_id="t1"),
        lambda c: c[JobStatus.COMPLETED] == 80,
        within=60,
        interval=0.2,
    )
    assert await scalar(own_settings, "SELECT count(*) FROM effects") == 80


async def test_three_workers_fire_each_tick_once(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Three workers racing on one schedule enqueue and run exactly one job per tick."""
    workers = [spawn_worker() for _ in range(3)]
    schedule = await effects_runner.schedule_recurring_job("effect", {}, "1 second", tenant_id="t1")
    await wait_started(settings, 4, within=20)
    await effects_runner.cancel_job(schedule.job_id, tenant_id="t1")
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        await wait_exit(proc, 30)
    rows: Any = await scalar(
        settings,
        "SELECT json_agg(json_build_array(run_at, status)) FROM jobs WHERE schedule_id = %s",
        [schedule.job_id],
    )
    ticks = [r[0] for r in rows]
    assert len(ticks) == len(set(ticks)) >= 4
    fired = await scalar(settings, "SELECT count(*) FROM effect_starts")
    assert fired == await scalar(settings, "SELECT count(DISTINCT job_id) FROM effect_starts")
    assert await scalar(settings, "SELECT count(*) FROM effects") == fired
