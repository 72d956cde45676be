"""Every bad CLI invocation prints one ``Error:`` line on stderr, never a traceback, and exits non-zero.

The contract: click's usage errors (unknown command or option, a missing
option, a value the option's type refuses, ``--data`` that is not JSON, a
``--registry`` that cannot be loaded) exit 2 after click's usage hint; every
other failure (input the library refuses, a job not found, PostgreSQL
unreachable, any unexpected error) exits 1 with stderr exactly one line.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from algajobs import JobContext, JobRegistry, Settings
from algajobs.cli import main

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = "tests.integration.cli_jobs:registry"
ANY_REGISTRY = "tests.integration.test_cli_errors:anything"
anything = JobRegistry()


@anything.handler("echo")
async def echo(ctx: JobContext, data: Any) -> Any:
    """Take any JSON, so the payload checks themselves are what refuses it."""
    return data


GOOD = '{"name": "ops"}'
USAGE, FAILURE = 2, 1


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose environment points at the test schema, Postgres-only."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("JOB_SCHEMA", settings.schema_name)
    monkeypatch.setenv("JOB_RUNNER_TYPE", "postgres")
    monkeypatch.setenv("JOB_DB_RETRY_SECONDS", "1")
    return CliRunner()


def error_lines(result: Result) -> list[str]:
    """The stderr lines that start with ``Error:``."""
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def assert_one_error_line(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``, exactly one ``Error:`` line (the whole of stderr for code 1), no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    if code == FAILURE:
        assert result.stderr.strip().splitlines() == lines, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def schedule(*extra: str, data: str = GOOD, tenant: str = "t1") -> list[str]:
    """Arguments of a ``schedule greet`` call with ``extra`` options."""
    return ["schedule", "greet", "--tenant", tenant, "--data", data, "--registry", REGISTRY, *extra]


def echo_args(data: str) -> list[str]:
    """Arguments of a ``schedule echo`` call (any JSON payload) with ``data``."""
    return ["schedule", "echo", "--tenant", "t1", "--data", data, "--registry", ANY_REGISTRY]


BAD_INVOCATIONS: list[tuple[str, list[str], int, tuple[str, ...]]] = [
    ("no such command", ["frobnicate"], USAGE, ("frobnicate",)),
    ("missing tenant", ["status", str(uuid.uuid4())], USAGE, ("--tenant",)),
    ("data not JSON", schedule(data="{nope"), USAGE, ("--data", "not JSON")),
    ("data nested too deep", schedule(data="[" * 100_000), USAGE, ("--data",)),
    ("data int beyond the digit limit", schedule(data="9" * 5_000), USAGE, ("--data",)),
    ("data failing the model", schedule(data="{}"), FAILURE, ("PayloadValidationError", "name")),
    ("data with NaN", echo_args('{"a": NaN}'), FAILURE, ("PayloadValidationError", "NaN")),
    ("data with Infinity", echo_args('{"a": [1, -Infinity]}'), FAILURE, ("PayloadValidationError", "Infinity")),
    ("data with NUL", echo_args('{"a": "x\\u0000y"}'), FAILURE, ("PayloadValidationError", "NUL")),
    ("data with NUL in a key", echo_args('{"a\\u0000": 1}'), FAILURE, ("PayloadValidationError", "NUL")),
    ("data with lone surrogate", echo_args('["\\ud800"]'), FAILURE, ("PayloadValidationError", "surrogate")),
    ("data with NUL in a model field", schedule(data='{"name": "a\\u0000b"}'), FAILURE, ("PayloadValidationError",)),
    ("unknown job", ["schedule", "nope", "--tenant", "t1", "--registry", REGISTRY], FAILURE, ("UnknownJobError",)),
    ("bad tenant", schedule(tenant="a b"), FAILURE, ("InvalidTenantError",)),
    ("tenant with trailing newline", schedule(tenant="t1\n"), FAILURE, ("InvalidTenantError",)),
    ("run-at not a date", schedule("--at", "tomorrow"), USAGE, ("--at",)),
    (
        "run-at with Arabic-Indic digits",
        schedule("--at", "\u0662\u0660\u0663\u0660-01-01T00:00:00+0000"),
        USAGE,
        ("--at", "ASCII"),
    ),
    ("run-at and every together", schedule("--at", "2030-01-01T00:00:00+0000", "--every", "1 hour"), USAGE, ("--at",)),
    ("interval a million weeks", schedule("--every", "1000000 weeks"), FAILURE, ("InvalidScheduleError",)),
    ("interval Arabic-Indic", schedule("--every", "\u0661\u0665 minutes"), FAILURE, ("InvalidScheduleError",)),
    ("cron that never fires", schedule("--every", "0 0 31 2 *"), FAILURE, ("InvalidScheduleError", "never")),
    ("cron nonsense", schedule("--every", "sometimes"), FAILURE, ("InvalidScheduleError",)),
    ("priority Arabic-Indic", schedule("--priority", "\u0661\u0662"), USAGE, ("--priority", "ASCII")),
    ("priority not a number", schedule("--priority", "high"), USAGE, ("--priority",)),
    ("priority out of range", schedule("--priority", str(10**30)), FAILURE, ("priority",)),
    ("status malformed id", ["status", "not-a-uuid", "--tenant", "t1"], FAILURE, ("InvalidJobIdError",)),
    (
        "status Arabic-Indic id",
        ["status", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668-1234-5678-1234-567812345678", "--tenant", "t1"],
        FAILURE,
        ("InvalidJobIdError",),
    ),
    ("status bad tenant", ["status", str(uuid.uuid4()), "--tenant", "a/b"], FAILURE, ("InvalidTenantError",)),
    ("status of another tenant's job", ["status", str(uuid.uuid4()), "--tenant", "t2"], FAILURE, ("JobNotFoundError",)),
    ("list limit -1", ["list", "--tenant", "t1", "--limit", "-1"], USAGE, ("--limit",)),
    ("list limit Arabic-Indic", ["list", "--tenant", "t1", "--limit", "\u0661\u0660"], USAGE, ("--limit", "ASCII")),
    ("list limit fullwidth", ["list", "--tenant", "t1", "--limit", "\uff11"], USAGE, ("--limit",)),
    ("list offset -1", ["list", "--tenant", "t1", "--offset", "-1"], USAGE, ("--offset",)),
    ("list bad tenant", ["list", "--tenant", "t1\n"], FAILURE, ("InvalidTenantError",)),
    ("list unknown status", ["list", "--tenant", "t1", "--status", "bogus"], USAGE, ("--status",)),
    ("cancel non-UUID", ["cancel", "nope", "--tenant", "t1"], FAILURE, ("InvalidJobIdError",)),
    ("retry non-UUID", ["retry", "nope", "--tenant", "t1"], FAILURE, ("InvalidJobIdError",)),
    ("retry unknown job", ["retry", str(uuid.uuid4()), "--tenant", "t1"], FAILURE, ("JobNotFoundError",)),
    ("worker unknown module", ["worker", "--registry", "nonexistent:thing"], USAGE, ("--registry", "nonexistent")),
    ("worker without attribute", ["worker", "--registry", "nonexistent"], USAGE, ("--registry",)),
    ("worker not a registry", ["worker", "--registry", "os:path"], USAGE, ("--registry", "JobRegistry")),
    ("worker missing attribute", ["worker", "--registry", "os:nothing_here"], USAGE, ("--registry",)),
    (
        "worker concurrency Arabic-Indic",
        ["worker", "--registry", REGISTRY, "--concurrency", "\u0665"],
        USAGE,
        ("--concurrency",),
    ),
]


@pytest.mark.parametrize(("case", "args", "code", "needles"), BAD_INVOCATIONS, ids=[c[0] for c in BAD_INVOCATIONS])
def test_bad_invocation_prints_one_error_line(
    cli: CliRunner, settings: Settings, case: str, args: list[str], code: int, needles: tuple[str, ...]
) -> None:
    """The exit status is as documented, stderr holds one ``Error:`` line, and nothing was written."""
    assert_one_error_line(cli.invoke(main, args), code, *needles)
    with psycopg.connect(settings.database_url, options=f"-c search_path={settings.schema_name}") as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM schedules)").fetchone()
    assert row == (0,)


def test_registry_module_that_fails_to_import_is_a_usage_error(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry module raising on import is reported in one line, without its traceback."""
    (tmp_path / "boom_registry.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert_one_error_line(cli.invoke(main, ["worker", "--registry", "boom_registry:registry"]), USAGE, "boom at import")


def test_unexpected_errors_are_one_line_too(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug surfacing as a plain exception still gives one ``Error:`` line and exit 1, no traceback."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr("algajobs.cli.apply_migrations", broken)
    line = assert_one_error_line(cli.invoke(main, ["migrate"]), FAILURE, "RuntimeError", "something")
    assert "broke" in line


@pytest.fixture
def postgres_down(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner whose DATABASE_URL is a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/postgres")
    monkeypatch.setenv("JOB_SCHEMA", "aj_unreachable")
    monkeypatch.setenv("JOB_RUNNER_TYPE", "postgres")
    monkeypatch.setenv("JOB_DB_RETRY_SECONDS", "1")
    return CliRunner()


UNREACHABLE: list[tuple[str, list[str]]] = [
    ("migrate", ["migrate"]),
    ("health", ["health"]),
    ("status", ["status", str(uuid.uuid4()), "--tenant", "t1"]),
    ("list", ["list", "--tenant", "t1"]),
    ("list counts", ["list", "--tenant", "t1", "--counts"]),
    ("cancel", ["cancel", str(uuid.uuid4()), "--tenant", "t1"]),
    ("retry", ["retry", str(uuid.uuid4()), "--tenant", "t1"]),
    ("schedule", schedule()),
    ("schedule recurring", schedule("--every", "1 hour")),
    ("worker", ["worker", "--registry", REGISTRY]),
]


@pytest.mark.parametrize(("case", "args"), UNREACHABLE, ids=[c[0] for c in UNREACHABLE])
def test_unreachable_postgresql_is_one_error_line(postgres_down: CliRunner, case: str, args: list[str]) -> None:
    """Every command that needs PostgreSQL says so in one line and exits 1."""
    assert_one_error_line(postgres_down.invoke(main, args), FAILURE, "PostgreSQL")


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("malformed id", ["status", "nope", "--tenant", "t1"]),
        ("bad interval", schedule("--every", "\u0661\u0665 minutes")),
    ],
)
def test_bad_input_is_reported_even_while_postgresql_is_down(
    postgres_down: CliRunner, case: str, args: list[str]
) -> None:
    """Input is checked before connecting, so the user learns what is wrong with it first."""
    line = assert_one_error_line(postgres_down.invoke(main, args), FAILURE)
    assert "PostgreSQL" not in line


@pytest.mark.parametrize(
    ("case", "args", "needle"),
    [
        ("payload with NaN", echo_args('{"a": NaN}'), "PayloadValidationError"),
        ("PostgreSQL unreachable", ["list", "--tenant", "t1"], "PostgreSQL"),
    ],
)
def test_real_process_stderr_is_one_error_line(settings: Settings, case: str, args: list[str], needle: str) -> None:
    """As a process (logging configured as in production) stderr is just the ``Error:`` line; exit 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port}/postgres"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": unreachable if needle == "PostgreSQL" else settings.database_url,
        "JOB_SCHEMA": settings.schema_name,
        "JOB_RUNNER_TYPE": "postgres",
        "JOB_DB_RETRY_SECONDS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "algajobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == FAILURE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error:")
    assert needle in lines[0]
