"""Jobs started by other Temporal clients (a Node script, the ``temporal`` CLI) on the real dev server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from algajobs import JobContext, JobInfo, JobRegistry, JobStatus, RunnerType, Settings, TemporalRunner
from algajobs.testing import temporal_cli_path
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "tests" / "interop"
TS_CLIENT = INTEROP / "ts_client.mjs"
DOC = ROOT / "docs" / "how-to" / "other-languages.md"
SUBPROCESS_LIMIT = 90.0
"""Seconds a Node or CLI process may take; the script bounds each of its own waits at 30 s."""
CLI_DATA = {"to": "ops", "pages": 3}


def register_interop(registry: JobRegistry) -> None:
    """The handlers the Node script and the CLI start, by name."""

    @registry.handler("slow-ts", timeout=timedelta(minutes=2))
    async def slow_ts(ctx: JobContext, data: dict[str, int]) -> dict[str, Any]:
        steps, step_ms = data["steps"], data["stepMs"]
        await ctx.add_detail("setup", result={"steps": steps})
        for step in range(1, steps + 1):
            if ctx.cancelled:
                break
            await asyncio.sleep(step_ms / 1000)
            await ctx.report_progress(step * 100 // steps, f"step {step}")
        return {"steps": steps, "tenant": ctx.tenant_id}

    @registry.handler("cli-report")
    async def cli_report(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
        await ctx.add_detail("render", result={"pages": data["pages"]})
        return {"sent_to": data["to"], "job_id": str(ctx.job_id)}


@pytest.fixture
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A throwaway Temporal dev server on a free loopback port."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment


@pytest.fixture
async def runner(
    dev_env: WorkflowEnvironment, settings: Settings, registry: JobRegistry
) -> AsyncIterator[TemporalRunner]:
    """A started Temporal runner whose worker serves a fresh task queue with the interop handlers."""
    register_interop(registry)
    conf = settings.model_copy(update={"runner_type": RunnerType.TEMPORAL, "temporal_task_queue": f"q-{uuid.uuid4()}"})
    async with TemporalRunner(conf, registry, client=dev_env.client) as opened:
        await opened.start()
        yield opened


def address(env: WorkflowEnvironment) -> str:
    """The dev server's gRPC address, as other clients dial it."""
    return env.client.service_client.config.target_host


async def run_process(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run a process without blocking the event loop (the worker shares it); return stdout, fail on non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(SUBPROCESS_LIMIT):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{shlex.join(argv)} did not finish within {SUBPROCESS_LIMIT}s")
    out, err = stdout.decode(), stderr.decode()
    assert process.returncode == 0, f"{shlex.join(argv)} exited {process.returncode}\nstdout: {out}\nstderr: {err}"
    return out


def iso_instant(value: object) -> datetime:
    """``value`` parsed as an ISO-8601 timestamp with a UTC offset (what other-language clients receive)."""
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def cli_commands(address: str, task_queue: str, workflow_id: str, job_input: dict[str, Any]) -> list[list[str]]:
    """The two ``temporal`` commands the docs show: start ``genericJobWorkflow``, then wait for its result."""
    return [
        [
            "temporal", "workflow", "start",
            "--address", address,
            "--task-queue", task_queue,
            "--type", "genericJobWorkflow",
            "--workflow-id", workflow_id,
            "--input", json.dumps(job_input),
        ],
        ["temporal", "workflow", "result", "--address", address, "--workflow-id", workflow_id, "--output", "json"],
    ]  # fmt: skip


async def finished_rows(runner: TemporalRunner, tenant_id: str, count: int) -> list[JobInfo]:
    """The tenant's rows once ``count`` of them have ended."""
    return await eventually(
        lambda: runner.list_jobs(tenant_id=tenant_id),
        lambda rows: sum(r.status in {JobStatus.COMPLETED, JobStatus.CANCELLED} for r in rows) >= count,
        within=20,
        interval=0.1,
    )


def assert_temporal_client_row(row: JobInfo, workflow_id: str, run_id: str | None = None) -> None:
    """A row created by a run another client started: Temporal's, keyed by the workflow, marked as such."""
    assert row.runner_type is RunnerType.TEMPORAL
    assert row.external_id == workflow_id
    if run_id is not None:
        assert row.external_run_id == run_id
    assert row.metadata.get("started_by") == "temporal client"
    assert row.started_at is not None and row.completed_at is not None


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (needed to run tests/interop)")
@pytest.mark.skipif(
    not (INTEROP / "node_modules" / "@temporalio" / "client").is_dir(),
    reason="tests/interop/node_modules is absent: run `npm ci` in tests/interop (.ci/run does)",
)
async def test_a_typescript_client_starts_queries_and_cancels_jobs(
    runner: TemporalRunner, dev_env: WorkflowEnvironment
) -> None:
    """A Node client using @temporalio/client alone runs one job, cancels another, and both land in the jobs table."""
    python_job = await runner.schedule_job("slow-ts", {"steps": 1, "stepMs": 1}, tenant_id="ts")
    first_id, second_id = str(uuid.uuid4()), str(uuid.uuid4())
    node = shutil.which("node")
    assert node is not None
    env = {**os.environ, "TEMPORAL_ADDRESS": address(dev_env), "TASK_QUEUE": runner.settings.temporal_task_queue}
    output = await run_process(node, str(TS_CLIENT), first_id, second_id, env=env)
    report = json.loads(output.strip().splitlines()[-1])

    first, second = report["first"]["result"], report["second"]["result"]
    assert first["success"] is True, first
    assert first["jobId"] == first_id
    assert first["result"] == {"steps": 30, "tenant": "ts"}
    iso_instant(first["completedAt"])
    assert first.get("error") is None
    observed = report["observedState"]
    assert observed["step"] == "running"
    assert observed["jobId"] == first_id
    iso_instant(observed["startedAt"])
    progressed = report["progressState"]
    assert progressed["step"] == "running" and progressed["progress"] > 0, progressed
    assert progressed["message"].startswith("step "), progressed
    assert report["cancelSeenState"]["cancelRequested"] is True

    assert second["success"] is False, second
    assert second["jobId"] == second_id
    assert "cancelled by ts-client: from ts" in second["error"]
    iso_instant(second["completedAt"])

    rows = {row.job_id: row for row in await finished_rows(runner, "ts", 3)}
    assert set(rows) == {uuid.UUID(first_id), uuid.UUID(second_id), python_job.job_id}
    done, cancelled = rows[uuid.UUID(first_id)], rows[uuid.UUID(second_id)]
    assert (done.status, done.job_name, done.result, done.progress) == (
        JobStatus.COMPLETED,
        "slow-ts",
        {"steps": 30, "tenant": "ts"},
        100,
    )
    assert done.data == {"steps": 30, "stepMs": 100}
    assert_temporal_client_row(done, report["first"]["workflowId"], report["first"]["runId"])
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.error is not None and "from ts" in cancelled.error
    assert_temporal_client_row(cancelled, report["second"]["workflowId"], report["second"]["runId"])
    for job_id in (first_id, second_id):
        details = await runner.get_job_details(job_id, tenant_id="ts")
        assert [(d.step_name, d.status) for d in details] == [("setup", JobStatus.COMPLETED)]

    # Listed like a job scheduled from Python: same engine, same options from the registry.
    scheduled = rows[python_job.job_id]
    assert (scheduled.status, scheduled.runner_type) == (JobStatus.COMPLETED, RunnerType.TEMPORAL)
    assert scheduled.external_id is not None
    assert "started_by" not in scheduled.metadata
    assert done.max_attempts == cancelled.max_attempts == scheduled.max_attempts
    counts = await runner.count_jobs_by_status(tenant_id="ts")
    assert {status: n for status, n in counts.items() if n} == {JobStatus.COMPLETED: 2, JobStatus.CANCELLED: 1}


async def test_the_temporal_cli_starts_a_job(runner: TemporalRunner, dev_env: WorkflowEnvironment) -> None:
    """``temporal workflow start`` with the documented input runs the job and creates its row."""
    job_id = str(uuid.uuid4())
    workflow_id = f"cli-job-{job_id}"
    job_input = {"jobId": job_id, "jobName": "cli-report", "tenantId": "cli", "data": CLI_DATA}
    start, result = cli_commands(address(dev_env), runner.settings.temporal_task_queue, workflow_id, job_input)
    temporal = temporal_cli_path()
    await run_process(temporal, *start[1:])
    output = await run_process(temporal, *result[1:])

    shown = json.loads(output)
    assert (shown["workflowId"], shown["status"]) == (workflow_id, "COMPLETED")
    outcome = shown["result"]
    assert outcome["success"] is True, outcome
    assert outcome["jobId"] == job_id
    assert outcome["result"] == {"sent_to": "ops", "job_id": job_id}
    iso_instant(outcome["completedAt"])

    [row] = await finished_rows(runner, "cli", 1)
    assert (str(row.job_id), row.status, row.job_name, row.data) == (
        job_id,
        JobStatus.COMPLETED,
        "cli-report",
        CLI_DATA,
    )
    assert_temporal_client_row(row, workflow_id, shown["runId"])
    details = await runner.get_job_details(job_id, tenant_id="cli")
    assert [(d.step_name, d.result) for d in details] == [("render", {"pages": 3})]


def doc_blocks(language: str) -> list[str]:
    """The fenced code blocks of the docs page in ``language``."""
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_docs_show_the_code_the_tests_run() -> None:
    """The docs page's TypeScript snippet, client version and CLI lines are exactly what the tests above use."""
    script = TS_CLIENT.read_text()
    core = re.search(r"^// --8<-- \[start:client\]\n(.*?)^// --8<-- \[end:client\]$", script, re.MULTILINE | re.DOTALL)
    assert core is not None, "ts_client.mjs lost its docs markers"
    assert core.group(1) in doc_blocks("js"), "docs/how-to/other-languages.md no longer shows ts_client.mjs's core"

    pinned = json.loads((INTEROP / "package.json").read_text())["dependencies"]["@temporalio/client"]
    assert f"@temporalio/client@{pinned}" in DOC.read_text(), "the docs install another client version than the tests"

    [shell] = [block for block in doc_blocks("bash") if "temporal workflow" in block]
    lines = [line for line in shell.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    shown = [shlex.split(line) for line in lines]
    example = {
        "jobId": "3f2b8c1e-5d7a-4e9b-8c6d-1a2b3c4d5e6f",
        "jobName": "cli-report",
        "tenantId": "cli",
        "data": CLI_DATA,
    }
    expected = cli_commands("localhost:7233", "alga-jobs", f"cli-job-{example['jobId']}", example)
    assert [parsed_input(c) for c in shown] == [parsed_input(c) for c in expected]


def parsed_input(argv: list[str]) -> list[Any]:
    """``argv`` with its ``--input`` JSON parsed, so spacing in the docs does not matter."""
    return [json.loads(arg) if i and argv[i - 1] == "--input" else arg for i, arg in enumerate(argv)]
