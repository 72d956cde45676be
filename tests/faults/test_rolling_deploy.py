"""Rolling deploys, services sharing a schema, and Temporal's priority and fairness, with real worker processes.

A worker never claims a job type it has no handler for: such jobs wait until
a worker that has it comes (DESIGN §11). Here the workers are `algajobs
worker` subprocesses on registries of ``tests/faults/app.py``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.client import Client

from algajobs import PostgresRunner, RunnerType, Settings, TemporalRunner
from algajobs.temporal.ids import workflow_id_for
from algajobs.workflows.contracts import JobState
from tests.faults.app import registry
from tests.faults.conftest import WorkerFactory, scalar
from tests.faults.temporal_tools import DevServer
from tests.helpers import eventually

OLD = "tests.faults.app:old_registry"
NEW_JOBS = 200


async def rows(settings: Settings, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one query on a fresh connection and return every row."""
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        cur = await conn.execute(query.encode(), params)
        return await cur.fetchall()


async def statuses(settings: Settings, job_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """How many of these jobs are in each status."""
    found = await rows(
        settings, "SELECT status::text, count(*) FROM jobs WHERE job_id = ANY(%s) GROUP BY 1", [list(job_ids)]
    )
    return {status: n for status, n in found}


async def workers_announced(settings: Settings, count: int, within: float = 30.0) -> None:
    """Wait until ``count`` worker processes have announced themselves in ``workers``."""
    await eventually(
        lambda: scalar(settings, "SELECT count(*) FROM workers"), lambda n: n == count, within=within, interval=0.1
    )


async def terminate(proc: subprocess.Popen[bytes], within: float = 30.0) -> int:
    """SIGTERM a worker and return its exit code once it has stopped."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(asyncio.to_thread(proc.wait), within)


async def assert_each_ran_once(settings: Settings, job_ids: Sequence[uuid.UUID]) -> None:
    """Every job completed on its first attempt; its handler started once and its effect happened once."""
    ids = [str(j) for j in job_ids]
    assert await scalar(settings, "SELECT count(*) FROM effects WHERE job_id::text = ANY(%s)", [ids]) == len(ids)
    assert await scalar(settings, "SELECT count(*) FROM effect_starts WHERE job_id::text = ANY(%s)", [ids]) == len(ids)
    assert await rows(
        settings,
        "SELECT status::text, attempts, count(*) FROM jobs WHERE job_id::text = ANY(%s) GROUP BY 1, 2",
        [ids],
    ) == [("completed", 1, len(ids))]
    assert await scalar(settings, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 0


# -- PostgreSQL ---------------------------------------------------------------


async def test_a_rolling_deploy_on_postgres_runs_every_new_job_once(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """An old worker leaves 200 jobs of a type it lacks queued (health names it); the new release runs each once."""
    runner = effects_runner
    old = spawn_worker(OLD)
    await workers_announced(settings, 1)
    jobs = [j.job_id for j in await runner.schedule_jobs("effect-new", [{}] * NEW_JOBS, tenant_id="t1")]
    canary = await runner.schedule_job("effect", {}, tenant_id="t1")
    # The old worker claimed the canary, scheduled after the new jobs, and then polls on: it is
    # claiming, and passing the new jobs over.
    await eventually(lambda: statuses(settings, [canary.job_id]), lambda c: c == {"completed": 1}, within=20)
    await asyncio.sleep(1.5)  # three more poll intervals
    assert await statuses(settings, jobs) == {"queued": NEW_JOBS}
    unserved = (await runner.is_healthy()).unserved
    assert [(u.queue, u.job_name, u.engine) for u in unserved] == [("default", "effect-new", RunnerType.POSTGRES)]

    spawn_worker()  # the new release
    await workers_announced(settings, 2)
    assert await terminate(old) == 0
    await eventually(lambda: statuses(settings, jobs), lambda c: c == {"completed": NEW_JOBS}, within=30)
    await assert_each_ran_once(settings, jobs)
    assert (await runner.is_healthy()).unserved == ()


async def test_two_services_on_one_schema_run_only_their_own_jobs(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Services A (a1, a2) and B (b1) share a schema and the default queue: each runs only its own types, once."""
    spawn_worker("tests.faults.app:service_a", SERVICE="a")
    spawn_worker("tests.faults.app:service_b", SERVICE="b")
    await workers_announced(settings, 2)
    jobs: list[uuid.UUID] = []
    for name in ("a1", "b1", "a2"):
        jobs += [j.job_id for j in await effects_runner.schedule_jobs(name, [{}] * 100, tenant_id="t1")]
    await eventually(lambda: statuses(settings, jobs), lambda c: c == {"completed": 300}, within=30)
    runs = await rows(
        settings,
        "SELECT job_name, service, count(*), count(DISTINCT job_id) FROM service_runs GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert runs == [("a1", "a", 100, 100), ("a2", "a", 100, 100), ("b1", "b", 100, 100)]
    await assert_each_ran_once(settings, jobs)


async def test_a_paused_queue_runs_nothing_on_a_worker_process_until_resumed(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Paused before 50 jobs arrive: the worker process starts none of them; resumed: each runs once."""
    runner = effects_runner
    spawn_worker()
    await workers_announced(settings, 1)
    assert await runner.pause_queue("default", reason="fault test")
    jobs = [j.job_id for j in await runner.schedule_jobs("effect", [{}] * 50, tenant_id="t1")]
    await asyncio.sleep(1.5)  # three poll intervals, and the insert notice: nothing may start
    assert await scalar(settings, "SELECT count(*) FROM effect_starts") == 0
    assert await statuses(settings, jobs) == {"queued": 50}
    assert await runner.resume_queue("default")
    await eventually(lambda: statuses(settings, jobs), lambda c: c == {"completed": 50}, within=30)
    await assert_each_ran_once(settings, jobs)


async def test_a_small_tenant_is_served_alongside_a_backlog_on_a_worker_process(
    effects_runner: PostgresRunner, spawn_worker: WorkerFactory, settings: Settings
) -> None:
    """Tenant A has 1,000 jobs queued first and B 10: B's jobs are among the first 40 a worker process starts."""
    runner = effects_runner
    for _ in range(2):
        await runner.schedule_jobs("effect", [{}] * 500, tenant_id="tenant-a")
    small = [j.job_id for j in await runner.schedule_jobs("effect", [{}] * 10, tenant_id="tenant-b")]
    spawn_worker(JOB_WORKER_CONCURRENCY=5, JOB_FETCH_BATCH_SIZE=5)
    await eventually(lambda: statuses(settings, small), lambda c: c == {"completed": 10}, within=30)
    order = await rows(
        settings,
        "SELECT j.tenant FROM effect_starts s JOIN jobs j ON j.job_id = s.job_id ORDER BY s.at, s.job_id LIMIT 40",
    )
    assert [tenant for (tenant,) in order].count("tenant-b") == 10, order


# -- Temporal -------------------------------------------------------------------


def temporal_settings(settings: Settings, server: DevServer) -> Settings:
    """Temporal-only settings (no fallback) for ``server``, on a task queue of this test's own."""
    changes = {
        "runner_type": RunnerType.TEMPORAL,
        "fallback_to_postgres": False,
        "temporal_address": server.address,
        "temporal_task_queue": f"q-{uuid.uuid4()}",
    }
    return Settings.load(**{**settings.model_dump(), **changes})  # validated, unlike model_copy


def temporal_worker_env(conf: Settings, **env: Any) -> dict[str, Any]:
    """The environment of a Temporal-only worker subprocess for ``conf``."""
    return {
        "JOB_RUNNER_TYPE": "temporal",
        "JOB_RUNNER_FALLBACK_TO_PGBOSS": "false",
        "TEMPORAL_ADDRESS": conf.temporal_address,
        "TEMPORAL_JOB_TASK_QUEUE": conf.temporal_task_queue,
        **env,
    }


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    """A Temporal dev server of this test's own."""
    server = DevServer(tmp_path)
    try:
        await server.start()
        yield server
    finally:
        server.close()


async def test_a_rolling_deploy_on_temporal_runs_every_new_job_once(
    effects: Settings, spawn_worker: WorkerFactory, dev_server: DevServer
) -> None:
    """An old worker's runs of a type it lacks wait (queued, none failed); the new release runs each once."""
    conf = temporal_settings(effects, dev_server)
    old = spawn_worker(OLD, **temporal_worker_env(conf))
    await workers_announced(effects, 1)
    async with TemporalRunner(conf, registry) as runner:  # schedules only: no worker here
        jobs = [j.job_id for j in await runner.schedule_jobs("effect-new", [{}] * NEW_JOBS, tenant_id="t1")]
        canary = await runner.schedule_job("effect", {}, tenant_id="t1")
        await eventually(lambda: statuses(effects, [canary.job_id]), lambda c: c == {"completed": 1}, within=30)
        await asyncio.sleep(3)  # the runs ask the old worker again (1 s, then 2 s later)
        assert await statuses(effects, jobs) == {"queued": NEW_JOBS}
        assert await scalar(effects, "SELECT count(*) FROM effect_starts") == 1
        client = await Client.connect(dev_server.address)
        for job_id in (jobs[0], jobs[-1]):
            state = await client.get_workflow_handle(workflow_id_for(job_id)).query("getJobState")
            assert JobState.model_validate(state).message == "waiting for a worker with a handler for 'effect-new'"
        unserved = (await runner.is_healthy()).unserved
        assert [(u.queue, u.job_name, u.engine) for u in unserved] == [("default", "effect-new", RunnerType.TEMPORAL)]

        spawn_worker(**temporal_worker_env(conf))  # the new release
        await workers_announced(effects, 2)
        assert await terminate(old) == 0
        await eventually(lambda: statuses(effects, jobs), lambda c: c == {"completed": NEW_JOBS}, within=45)
        await assert_each_ran_once(effects, jobs)


# Priority is on by default on server 1.32 (its new matcher); fairness needs the flag. Both order tasks
# within one task-queue partition, so the server gets one: the order is then exact, not approximate.
FAIR_ONE_PARTITION = {
    "matching.useNewMatcher": True,
    "matching.enableFairness": True,
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}


@pytest.fixture
async def fair_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    """A Temporal dev server with fairness enabled and task queues of one partition."""
    server = DevServer(tmp_path, dynamic_config=FAIR_ONE_PARTITION)
    try:
        await server.start()
        yield server
    finally:
        server.close()


async def start_order(settings: Settings) -> list[tuple[str, int]]:
    """(tenant, priority) of each handler run, in the order they began."""
    found = await rows(
        settings,
        "SELECT j.tenant, j.priority FROM effect_starts s JOIN jobs j ON j.job_id = s.job_id ORDER BY s.at",
    )
    return [(tenant, priority) for tenant, priority in found]


async def test_a_small_tenant_is_not_stuck_behind_a_big_backlog_on_temporal(
    effects: Settings, spawn_worker: WorkerFactory, fair_server: DevServer
) -> None:
    """Tenant A has 500 jobs queued, B 10; one worker running one at a time starts B's among the first ones."""
    conf = temporal_settings(effects, fair_server)
    async with TemporalRunner(conf, registry) as runner:
        await runner.schedule_jobs("effect", [{"sleep": 0.01}] * 500, tenant_id="tenant-a")
        await runner.schedule_jobs("effect", [{"sleep": 0.01}] * 10, tenant_id="tenant-b")
    spawn_worker(**temporal_worker_env(conf, JOB_WORKER_CONCURRENCY=1))
    order = await eventually(
        lambda: start_order(effects),
        lambda started: sum(tenant == "tenant-b" for tenant, _ in started) == 10,
        within=45,
        interval=0.2,
    )
    # The tenants take turns (B's at about every second start); in arrival order they would come after 500.
    b_starts = [n for n, (tenant, _) in enumerate(order) if tenant == "tenant-b"]
    assert max(b_starts) < 30, b_starts


async def test_high_priority_jobs_overtake_a_backlog_on_temporal(
    effects: Settings, spawn_worker: WorkerFactory, fair_server: DevServer
) -> None:
    """100 jobs queued, then 5 with priority 100: one worker running one at a time starts those 5 first."""
    conf = temporal_settings(effects, fair_server)
    async with TemporalRunner(conf, registry) as runner:
        await runner.schedule_jobs("effect", [{"sleep": 0.01}] * 100, tenant_id="t1")
        await runner.schedule_jobs("effect", [{"sleep": 0.01}] * 5, tenant_id="t1", priority=100)
    spawn_worker(**temporal_worker_env(conf, JOB_WORKER_CONCURRENCY=1))
    order = await eventually(
        lambda: start_order(effects),
        lambda started: sum(priority == 100 for _, priority in started) == 5,
        within=45,
        interval=0.2,
    )
    # Before the backlog, give or take a job or two the worker was handed as it started (it takes a
    # task that arrives while it polls at once, whatever its priority); in arrival order: 100th to 104th.
    high_starts = [n for n, (_, priority) in enumerate(order) if priority == 100]
    assert max(high_starts) <= 6, high_starts
