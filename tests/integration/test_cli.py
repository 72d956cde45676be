"""The algajobs CLI against real PostgreSQL (and the dev stack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from algajobs import Settings
from algajobs.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose environment points at the test schema, Postgres-only."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("JOB_SCHEMA", settings.schema_name)
    monkeypatch.setenv("JOB_RUNNER_TYPE", "postgres")
    return CliRunner()


def test_schedule_status_list_cancel_retry_round_trip(cli: CliRunner) -> None:
    """A job scheduled from the CLI can be read, listed, cancelled and retried."""
    scheduled = cli.invoke(
        main,
        [
            "schedule",
            "greet",
            "--tenant",
            "t1",
            "--data",
            '{"name": "ops"}',
            "--registry",
            "tests.integration.cli_jobs:registry",
        ],
    )
    assert scheduled.exit_code == 0, scheduled.output
    job_id = json.loads(scheduled.output)["job_id"]
    status = cli.invoke(main, ["status", job_id, "--tenant", "t1"])
    assert json.loads(status.output)["status"] == "queued"
    listing = cli.invoke(main, ["list", "--tenant", "t1"])
    assert job_id in listing.output
    assert cli.invoke(main, ["cancel", job_id, "--tenant", "t1"]).exit_code == 0
    counts = cli.invoke(main, ["list", "--tenant", "t1", "--counts"])
    assert "cancelled   1" in counts.output
    assert cli.invoke(main, ["retry", job_id, "--tenant", "t1"]).exit_code == 0
    status = cli.invoke(main, ["status", job_id, "--tenant", "t1"])
    assert json.loads(status.output)["status"] == "queued"


def test_errors_exit_non_zero_with_one_line(cli: CliRunner) -> None:
    """Bad input gives exit status 1 and the typed error's name."""
    bad_id = cli.invoke(main, ["status", "not-a-uuid", "--tenant", "t1"])
    assert bad_id.exit_code == 1
    assert "InvalidJobIdError" in bad_id.output
    other_tenant = cli.invoke(main, ["status", str(uuid.uuid4()), "--tenant", "t2"])
    assert other_tenant.exit_code == 1
    assert "JobNotFoundError" in other_tenant.output
    unknown = cli.invoke(
        main, ["schedule", "nope", "--tenant", "t1", "--registry", "tests.integration.cli_jobs:registry"]
    )
    assert unknown.exit_code == 1
    assert "UnknownJobError" in unknown.output
    bad_cron = cli.invoke(
        main,
        ["schedule", "greet", "--tenant", "t1", "--data", '{"name": "x"}', "--every", "sometimes",
         "--registry", "tests.integration.cli_jobs:registry"],
    )  # fmt: skip
    assert bad_cron.exit_code == 1
    assert "InvalidScheduleError" in bad_cron.output


def test_health_and_migrate(cli: CliRunner) -> None:
    """Health reports PostgreSQL; migrate on an up-to-date schema says so."""
    health = cli.invoke(main, ["health"])
    assert health.exit_code == 0
    assert "postgres  healthy" in health.output
    migrate = cli.invoke(main, ["migrate"])
    assert "up to date" in migrate.output


def test_health_fails_when_postgres_is_unreachable(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable database makes health exit 1 and say why."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    result = cli.invoke(main, ["health"])
    assert result.exit_code == 1
    assert "UNHEALTHY" in result.output


def test_dev_runs_the_demo_on_a_local_stack(settings: Settings) -> None:
    """`algajobs dev` starts Temporal and a worker, runs the demo to completion and stops cleanly."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "JOB_SCHEMA": settings.schema_name}
    proc = subprocess.run(
        [sys.executable, "-m", "algajobs", "dev", "--exit-after-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("completed attempts=") == 3
    assert proc.stdout.rstrip().endswith("stopped")


def test_queue_pause_resume_list_and_the_waiting_warnings(cli: CliRunner) -> None:
    """`queue pause|resume|list`, and `list`/`health` name job types that wait with no worker."""
    scheduled = cli.invoke(
        main, ["schedule", "greet", "--tenant", "t1", "--data", '{"name": "ops"}', "--registry", _REGISTRY]
    )
    assert scheduled.exit_code == 0, scheduled.output
    listing = cli.invoke(main, ["list", "--tenant", "t1"])
    assert "warning: no worker for type 'greet' in queue 'default' (postgres): its jobs wait" in listing.output
    paused = cli.invoke(main, ["queue", "pause", "default", "--reason", "deploy", "--by", "ops"])
    assert (paused.exit_code, paused.output.strip()) == (0, "queue 'default' paused"), paused.output
    again = cli.invoke(main, ["queue", "pause", "default"])
    assert again.output.strip() == "queue 'default' was already paused"
    queues = cli.invoke(main, ["queue", "list"])
    assert "paused    default (deploy)" in queues.output
    assert "unserved  no worker for type 'greet' in queue 'default' (postgres)" in queues.output
    health = cli.invoke(main, ["health"])
    assert health.exit_code == 0, health.output
    assert "'default' PAUSED since" in health.output and "by ops: deploy" in health.output
    assert "WARNING   no worker for type 'greet' in queue 'default' (postgres): its jobs wait" in health.output
    resumed = cli.invoke(main, ["queue", "resume", "default"])
    assert resumed.output.strip() == "queue 'default' resumed"
    assert cli.invoke(main, ["queue", "resume", "default"]).output.strip() == "queue 'default' was not paused"
    bad = cli.invoke(main, ["queue", "pause", "Bad Queue"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output and "invalid queue name" in bad.output
    assert "paused" not in cli.invoke(main, ["queue", "list"]).output


def test_worker_refuses_a_bad_queue_flag(cli: CliRunner) -> None:
    """`worker --queue` names are checked like JOB_QUEUES: one error line, exit 1."""
    result = cli.invoke(main, ["worker", "--registry", _REGISTRY, "--queue", "NOT OK"])
    assert result.exit_code == 1 and "JOB_QUEUES" in result.output and "Traceback" not in result.output


_REGISTRY = "tests.integration.cli_jobs:registry"
