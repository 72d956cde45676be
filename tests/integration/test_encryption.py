"""Payload encryption on both engines: real PostgreSQL and the time-skipping Temporal test server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from starlette.testclient import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from algajobs import (
    EncryptedPayload,
    JobContext,
    JobRegistry,
    JobStatus,
    PayloadDecryptionError,
    PostgresRunner,
    RunnerType,
    Settings,
    TemporalRunner,
)
from algajobs.cli import main
from algajobs.dashboard import DashboardOptions, create_app
from algajobs.temporal.codec import ENCODING, KEY_ID
from algajobs.temporal.ids import workflow_id_for
from algajobs.testing import test_server_path
from tests.helpers import eventually, temporal_engine

SECRET = "4111-1111-1111-1111"  # what must never appear in a row or in history
Conn = psycopg.AsyncConnection[tuple[Any, ...]]


def new_key() -> str:
    """A fresh base64 AES-256 key."""
    return base64.b64encode(os.urandom(32)).decode()


OLD, NEW = new_key(), new_key()


@pytest.fixture
def calls(registry: JobRegistry) -> list[Any]:
    """Registers ``charge`` (records its payload, adds a step, returns a receipt); yields the payloads it saw."""
    seen: list[Any] = []

    @registry.handler("charge")
    async def charge(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        await ctx.add_detail("authorize", status="completed", result={"card": data["card"], "ok": True})
        return {"receipt": f"paid with {data['card']}"}

    return seen


def keyed(settings: Settings, keys: str | None, **changes: Any) -> Settings:
    """``settings`` with JOB_ENCRYPTION_KEYS set to ``keys`` (None: off)."""
    return settings.model_copy(update={"encryption_keys": None if keys is None else SecretStr(keys), **changes})


async def raw(conn: Conn, query: str, job_id: uuid.UUID) -> str:
    """A payload column as PostgreSQL holds it, as text."""
    cur = await conn.execute(query, (job_id,))  # type: ignore[arg-type]  # test-only SQL
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def finished(runner: PostgresRunner | TemporalRunner, job_id: uuid.UUID) -> Any:
    """The job once it has left the queue (bounded poll)."""
    return await eventually(
        lambda: runner.get_job_status(job_id, tenant_id="t1"), lambda j: j.status.is_finished, within=30, interval=0.05
    )


# -- PostgreSQL engine ---------------------------------------------------------


async def test_postgres_rows_hold_no_plaintext_and_readers_with_the_key_see_it(
    settings: Settings, registry: JobRegistry, calls: list[Any], conn: Conn
) -> None:
    """Data, result and step results are envelopes in the rows; the handler and the reads see plain values."""
    conf = keyed(settings, f"k1:{NEW}")
    async with PostgresRunner(conf, registry) as runner:
        await runner.start()
        job = await runner.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
        assert await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=30) == {
            "receipt": f"paid with {SECRET}"
        }
        info = await runner.get_job_status(job.job_id, tenant_id="t1")
        assert (info.data, info.result) == ({"card": SECRET}, {"receipt": f"paid with {SECRET}"})
        (listed,) = await runner.list_jobs(tenant_id="t1")
        assert listed.data == {"card": SECRET}
        (step,) = await runner.get_job_details(job.job_id, tenant_id="t1")
        assert step.result == {"card": SECRET, "ok": True}
    assert calls == [{"card": SECRET}]
    for query in (
        "SELECT data::text FROM jobs WHERE job_id = %s",
        "SELECT result::text FROM jobs WHERE job_id = %s",
        "SELECT result::text FROM job_details WHERE job_id = %s",
    ):
        stored = await raw(conn, query, job.job_id)
        assert SECRET not in stored and "receipt" not in stored
        assert json.loads(stored)["$encrypted"]["kid"] == "k1"


async def test_a_reader_without_the_key_sees_encrypted_never_ciphertext(
    settings: Settings, registry: JobRegistry, calls: list[Any]
) -> None:
    """Without keys (or with other keys) reads and wait_for_result say 'encrypted with key k1'."""
    async with PostgresRunner(keyed(settings, f"k1:{NEW}"), registry) as runner:
        await runner.start()
        job = await runner.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
        await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=30)
    for keys in (None, f"other:{OLD}"):
        async with PostgresRunner(keyed(settings, keys), registry) as reader:
            info = await reader.get_job_status(job.job_id, tenant_id="t1")
            assert info.status is JobStatus.COMPLETED
            for value in (info.data, info.result, (await reader.get_job_details(job.job_id, tenant_id="t1"))[0].result):
                assert isinstance(value, EncryptedPayload) and value == "<encrypted with key k1>"
            assert info.model_dump(mode="json")["data"] == "<encrypted with key k1>"
            with pytest.raises(PayloadDecryptionError, match="'k1'"):
                await reader.wait_for_result(job.job_id, tenant_id="t1", timeout=5)


def test_the_cli_shows_a_payload_only_to_a_holder_of_the_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``schedule`` seals with JOB_ENCRYPTION_KEYS; ``status`` without it prints the marker, never ciphertext."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("JOB_SCHEMA", settings.schema_name)
    monkeypatch.setenv("JOB_RUNNER_TYPE", "postgres")
    monkeypatch.setenv("JOB_ENCRYPTION_KEYS", f"k1:{NEW}")
    cli = CliRunner()
    args = ["schedule", "greet", "--tenant", "t1", "--data", json.dumps({"name": SECRET})]
    scheduled = cli.invoke(main, [*args, "--registry", "tests.integration.cli_jobs:registry"])
    assert scheduled.exit_code == 0, scheduled.output
    status = ["status", json.loads(scheduled.output)["job_id"], "--tenant", "t1"]
    assert json.loads(cli.invoke(main, status).output)["data"] == {"name": SECRET}
    monkeypatch.delenv("JOB_ENCRYPTION_KEYS")
    shown = cli.invoke(main, status)
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["data"] == "<encrypted with key k1>"
    assert SECRET not in shown.output and "ciphertext" not in shown.output


async def test_a_postgres_worker_without_the_key_fails_the_job_and_says_why(
    settings: Settings, registry: JobRegistry, calls: list[Any]
) -> None:
    """The handler never runs on a payload it cannot read: the job fails, naming the missing key, not retried."""
    async with PostgresRunner(keyed(settings, f"k1:{NEW}"), registry) as scheduler:
        job = await scheduler.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
    async with PostgresRunner(keyed(settings, f"other:{OLD}"), registry) as worker:
        await worker.start()
        info = await finished(worker, job.job_id)
    assert calls == []
    assert info.status is JobStatus.FAILED and info.attempts == 1
    assert info.error is not None and info.error.startswith("PayloadDecryptionError:")
    assert "'k1'" in info.error and "JOB_ENCRYPTION_KEYS" in info.error


async def test_rotation_on_postgres_runs_old_jobs_and_seals_new_values_with_the_new_key(
    settings: Settings, registry: JobRegistry, calls: list[Any], conn: Conn
) -> None:
    """A job sealed under the old key runs on a worker holding new,old; its result is sealed with the new key."""
    async with PostgresRunner(keyed(settings, f"old:{OLD}"), registry) as before:
        job = await before.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
    async with PostgresRunner(keyed(settings, f"new:{NEW},old:{OLD}"), registry) as after:
        await after.start()
        assert (await after.wait_for_result(job.job_id, tenant_id="t1", timeout=30))["receipt"].endswith(SECRET)
        batch = await after.schedule_jobs("charge", [{"card": SECRET}, {"card": SECRET}], tenant_id="t1")
        recurring = await after.schedule_recurring_job("charge", {"card": SECRET}, "1 hours", tenant_id="t1")
        for queued in batch:
            await after.wait_for_result(queued.job_id, tenant_id="t1", timeout=30)
    assert (
        json.loads(await raw(conn, "SELECT data::text FROM jobs WHERE job_id = %s", job.job_id))["$encrypted"]["kid"]
        == "old"
    )
    assert (
        json.loads(await raw(conn, "SELECT result::text FROM jobs WHERE job_id = %s", job.job_id))["$encrypted"]["kid"]
        == "new"
    )
    for queued in batch:
        assert SECRET not in await raw(conn, "SELECT data::text FROM jobs WHERE job_id = %s", queued.job_id)
    schedule = await raw(conn, "SELECT data::text FROM schedules WHERE schedule_id = %s", recurring.job_id)
    assert SECRET not in schedule and json.loads(schedule)["$encrypted"]["kid"] == "new"


# -- Temporal engine -----------------------------------------------------------


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server."""
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    async with environment:
        yield environment


def on_temporal(settings: Settings, keys: str | None, queue: str) -> Settings:
    """Temporal-only settings on ``queue`` with ``keys``."""
    return keyed(settings, keys, runner_type=RunnerType.TEMPORAL, temporal_task_queue=queue)


def messages(failure: Failure) -> str:
    """A failure's message and its causes', joined."""
    return failure.message + (f" <- {messages(failure.cause)}" if failure.HasField("cause") else "")


def payloads_of(history: WorkflowHistory) -> list[Any]:
    """Every payload in a history's inputs, results and signals (local activities: their recorded results)."""
    found: list[Any] = []
    for event in history.events:
        for field in (
            event.workflow_execution_started_event_attributes.input,
            event.activity_task_scheduled_event_attributes.input,
            event.activity_task_completed_event_attributes.result,
            event.workflow_execution_completed_event_attributes.result,
            event.workflow_execution_signaled_event_attributes.input,
        ):
            found.extend(field.payloads)
        if "result" in event.marker_recorded_event_attributes.details:  # "data" is the SDK's own bookkeeping
            found.extend(event.marker_recorded_event_attributes.details["result"].payloads)
    return found


async def test_temporal_history_payloads_are_encrypted_and_the_job_completes(
    env: WorkflowEnvironment, settings: Settings, registry: JobRegistry, calls: list[Any], conn: Conn
) -> None:
    """Every payload in the workflow's history is binary/encrypted under k1; the row and the result read plain."""
    conf = on_temporal(settings, f"k1:{NEW}", f"q-{uuid.uuid4()}")
    async with TemporalRunner(conf, registry, client=env.client) as runner:
        await runner.start()
        job = await runner.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
        result = await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=30)
        assert result == {"receipt": f"paid with {SECRET}"}
        assert calls == [{"card": SECRET}]
        handle = temporal_engine(runner).client.get_workflow_handle(workflow_id_for(job.job_id))
        assert (await handle.result())["success"]  # decoded by the runner's client, which holds the key
        history = await env.client.get_workflow_handle(workflow_id_for(job.job_id)).fetch_history()
    payloads = payloads_of(history)
    assert len(payloads) >= 6  # input; handler activity input and result; claim and finish results; workflow result
    for payload in payloads:
        assert (payload.metadata["encoding"], payload.metadata[KEY_ID]) == (ENCODING, b"k1")
    assert SECRET.encode() not in b"".join(e.SerializeToString() for e in history.events)
    assert SECRET not in await raw(conn, "SELECT data::text FROM jobs WHERE job_id = %s", job.job_id)
    assert SECRET not in await raw(conn, "SELECT result::text FROM jobs WHERE job_id = %s", job.job_id)


async def test_a_temporal_worker_without_the_key_cannot_run_the_job_and_says_why(
    env: WorkflowEnvironment, settings: Settings, registry: JobRegistry, calls: list[Any]
) -> None:
    """A keyless worker's workflow task fails naming key k1 (Temporal retries it); a keyed worker then runs the job."""
    queue = f"q-{uuid.uuid4()}"
    async with TemporalRunner(on_temporal(settings, f"k1:{NEW}", queue), registry, client=env.client) as scheduler:
        job = await scheduler.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
        handle = env.client.get_workflow_handle(workflow_id_for(job.job_id))

        async def task_failures() -> list[str]:
            history = await handle.fetch_history()
            failed = (e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
            return [messages(e.workflow_task_failed_event_attributes.failure) for e in failed]

        async with TemporalRunner(on_temporal(settings, None, queue), registry, client=env.client) as keyless:
            await keyless.start()
            failures = await eventually(task_failures, bool, within=30, interval=0.2)
        assert "'k1'" in failures[0] and "JOB_ENCRYPTION_KEYS" in failures[0], failures
        assert calls == []
        info = await scheduler.get_job_status(job.job_id, tenant_id="t1")
        assert info.status is JobStatus.QUEUED  # waiting for a worker that holds the key

        await scheduler.start()
        done = await asyncio.wait_for(scheduler.wait_for_result(job.job_id, tenant_id="t1", timeout=60), 65)
        assert done == {"receipt": f"paid with {SECRET}"}
        assert calls == [{"card": SECRET}]


async def test_the_dashboard_shows_the_payload_only_with_the_key(
    settings: Settings, registry: JobRegistry, calls: list[Any]
) -> None:
    """A job's page decrypts with JOB_ENCRYPTION_KEYS; without it the payload and result read 'encrypted'."""
    conf = keyed(settings, f"k1:{NEW}")
    async with PostgresRunner(conf, registry) as runner:
        await runner.start()
        job = await runner.schedule_job("charge", {"card": SECRET}, tenant_id="t1")
        await runner.wait_for_result(job.job_id, tenant_id="t1", timeout=30)
    pages = {}
    for name, reader in (("with", conf), ("without", keyed(settings, None))):
        app = create_app(reader, registry, options=DashboardOptions(refresh_seconds=0))
        with TestClient(app, follow_redirects=False) as client:
            answer = client.get(f"/jobs/t1/{job.job_id}")
            assert answer.status_code == 200
            pages[name] = answer.text
    assert SECRET in pages["with"] and "encrypted with key" not in pages["with"]
    assert SECRET not in pages["without"] and "ciphertext" not in pages["without"]
    assert pages["without"].count("&lt;encrypted with key k1&gt;") >= 3  # payload, result, the step's result
