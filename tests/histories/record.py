"""Record genericJobWorkflow histories for the replay test (run by hand when the workflow changes).

    python -m tests.histories.record [--release NAME]

Each path a job can take (immediate, delayed, cancelled while waiting,
cancelled while running, retried, progress-heavy, started by another client)
runs once on a time-skipping test server against a throwaway schema of
``ALGAJOBS_TEST_DATABASE_URL``; its history is written to
``tests/histories/<release>/<path>.json``. Histories of every release stay
committed: ``test_replay.py`` replays them all against the current code, so a
change that is not replay-safe (see docs/how-to/change-the-workflow.md) fails CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from algajobs import JobContext, JobRegistry, RetryPolicy, Settings, TemporalRunner, migrate

try:
    from algajobs.temporal.ids import workflow_id_for
except ImportError:  # releases before 0.2 kept it in the runner module
    from algajobs.temporal.runner import workflow_id_for  # type: ignore[no-redef]
from algajobs.testing import test_server_path

DSN = os.environ.get("ALGAJOBS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

HERE = Path(__file__).parent


def handlers() -> JobRegistry:
    """The handlers the recorded paths run."""
    registry = JobRegistry()
    attempts: dict[str, int] = {}

    @registry.handler("record")
    async def record(ctx: JobContext, data: Any) -> Any:
        return data

    @registry.handler("flaky", retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(seconds=1)))
    async def flaky(ctx: JobContext, data: Any) -> int:
        key = str(ctx.job_id)
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] < 2:
            raise ConnectionError("first attempt fails")
        return attempts[key]

    @registry.handler("long")
    async def long(ctx: JobContext, data: Any) -> None:
        await ctx.report_progress(10, "started")
        await asyncio.sleep(60)

    @registry.handler("chatty")
    async def chatty(ctx: JobContext, data: Any) -> None:
        for step in range(50):
            await ctx.report_progress(step * 2, f"step {step}")
            await asyncio.sleep(0.05)
        await ctx.add_detail("done", status="completed", result={"steps": 50})

    return registry


async def record(release: str, *, external_clients: bool = True) -> list[Path]:
    """Run every path once and write its history; return the files written."""
    schema = f"aj_record_{uuid.uuid4().hex[:8]}"
    settings = Settings.load(database_url=DSN, schema_name=schema, runner_type="temporal", fallback_to_postgres=False)
    await migrate(settings)
    folder = HERE / release
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
        async with env:
            conf = settings.model_copy(update={"temporal_task_queue": f"record-{uuid.uuid4()}"})
            async with TemporalRunner(conf, handlers(), client=env.client) as runner:
                await runner.start()

                def handle(job_id: uuid.UUID) -> WorkflowHandle[Any, Any]:
                    return env.client.get_workflow_handle(workflow_id_for(job_id))

                async def done(name: str, job_id: uuid.UUID) -> None:
                    await handle(job_id).result()
                    path = folder / f"{name}.json"
                    path.write_text((await handle(job_id).fetch_history()).to_json())
                    written.append(path)

                await done("immediate", (await runner.schedule_job("record", {"n": 1}, tenant_id="t1")).job_id)
                later = datetime.now(UTC) + timedelta(hours=2)
                delayed = await runner.schedule_job_at("record", 2, later, tenant_id="t1")
                await env.sleep(timedelta(hours=3))
                await done("delayed", delayed.job_id)
                waiting = await runner.schedule_job_at(
                    "record", 3, datetime.now(UTC) + timedelta(days=2), tenant_id="t1"
                )
                await runner.cancel_job(waiting.job_id, tenant_id="t1")
                await done("cancelled_while_waiting", waiting.job_id)
                running = await runner.schedule_job("long", None, tenant_id="t1")
                for _ in range(400):  # bounded: 20 s for the handler to report it started
                    if (await runner.get_job_status(running.job_id, tenant_id="t1")).progress >= 10:
                        break
                    await asyncio.sleep(0.05)
                await runner.cancel_job(running.job_id, tenant_id="t1")
                await done("cancelled_while_running", running.job_id)
                await done("retried", (await runner.schedule_job("flaky", None, tenant_id="t1")).job_id)
                await done("progress_heavy", (await runner.schedule_job("chatty", None, tenant_id="t1")).job_id)
                if hasattr(runner, "pause_queue"):  # 0.3 and later: paused queues and waiting for a handler
                    await runner.pause_queue("default")
                    paused = await runner.schedule_job("record", 8, tenant_id="t1")
                    await env.sleep(timedelta(seconds=20))  # several re-checks while paused
                    await runner.resume_queue("default")
                    await done("paused_then_resumed", paused.job_id)
                    written.append(await _waiting_for_a_handler(env, conf, folder))
                if not external_clients:
                    return written
                external = uuid.uuid4()
                await env.client.start_workflow(
                    "genericJobWorkflow",
                    {"jobId": str(external), "jobName": "record", "tenantId": "t1", "data": 7},
                    id=workflow_id_for(external),
                    task_queue=conf.temporal_task_queue,
                )
                await done("started_by_another_client", external)
    finally:
        async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return written


async def _waiting_for_a_handler(env: WorkflowEnvironment, conf: Settings, folder: Path) -> Path:
    """A run whose worker lacks the handler: it waits, then continues as new; the first run is recorded."""
    lacking = JobRegistry()

    @lacking.handler("other")
    async def other(ctx: JobContext, data: Any) -> None:
        return None

    queue = conf.model_copy(update={"temporal_task_queue": f"record-{uuid.uuid4()}"})
    async with (
        TemporalRunner(queue, lacking, client=env.client) as old_release,
        TemporalRunner(queue, handlers(), client=env.client) as scheduler,
    ):
        await old_release.start()
        job = await scheduler.schedule_job("record", 9, tenant_id="t1")
        first = await env.client.get_workflow_handle(workflow_id_for(job.job_id)).describe()
        await env.sleep(timedelta(seconds=30))  # three waits, then continue-as-new
        history = await env.client.get_workflow_handle(workflow_id_for(job.job_id), run_id=first.run_id).fetch_history()
        await scheduler.cancel_job(job.job_id, tenant_id="t1")
    path = folder / "waited_for_a_handler.json"
    path.write_text(history.to_json())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="0.3.0", help="folder under tests/histories (the package version)")
    parser.add_argument("--no-external", action="store_true", help="skip the path started by another client")
    args = parser.parse_args()
    for path in asyncio.run(record(args.release, external_clients=not args.no_external)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
