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
