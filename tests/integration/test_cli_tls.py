"""``algajobs`` commands that dial Temporal take ``--tls-*`` and ``--api-key``: a real dev server behind a TLS proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from temporalio.testing import WorkflowEnvironment

from algajobs import JobStatus, RunnerType, Settings, TemporalRunner
from algajobs.cli import main
from algajobs.testing import temporal_cli_path
from tests.helpers import eventually
from tests.integration.cli_jobs import registry as cli_registry
from tests.integration.tls_proxy import Pki, TlsProxy, make_pki

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ("--tls", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name", "--api-key")
COMMANDS = ("worker", "health", "schedule", "cancel", "dashboard")
API_KEY = "ak-cli-" + uuid.uuid4().hex


@pytest.fixture
async def dev_server() -> AsyncIterator[str]:
    """A throwaway plaintext Temporal dev server on loopback; yields its host:port."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment.client.service_client.config.target_host


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh test CA and certificates; the CA, client certificate and key are also written to files."""
    made = make_pki()
    (tmp_path / "ca.pem").write_bytes(made.ca.cert)
    (tmp_path / "client.pem").write_bytes(made.client.cert)
    (tmp_path / "client.key").write_bytes(made.client.key)
    (tmp_path / "client.key").chmod(0o600)
    return made


def environment(settings: Settings, address: str, queue: str = "alga-jobs") -> dict[str, str]:
    """A process environment: the test schema, Temporal alone at ``address``, and no TEMPORAL_TLS_* at all."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "JOB_"))}
    return keep | {
        "DATABASE_URL": settings.database_url,
        "JOB_SCHEMA": settings.schema_name,
        "JOB_RUNNER_TYPE": "temporal",
        "JOB_RUNNER_FALLBACK_TO_PGBOSS": "false",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_JOB_TASK_QUEUE": queue,
    }


async def algajobs(env: dict[str, str], *args: str, within: float = 60) -> tuple[int, str, str]:
    """Run ``python -m algajobs ARGS`` (the proxy keeps serving meanwhile); its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "algajobs", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_every_command_that_dials_temporal_takes_the_tls_flags() -> None:
    """worker, health, schedule, cancel and dashboard list the same flags, each naming its variable."""
    for command in COMMANDS:
        shown = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        for flag in FLAGS:
            assert flag in shown.output, (command, flag)
        assert "Overrides TEMPORAL_TLS_CA" in shown.output and "Overrides TEMPORAL_API_KEY" in shown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["health", "--tls-cert", "client.pem"], "TEMPORAL_TLS_KEY is not set"),
        (["health", "--tls-key", "client.key"], "TEMPORAL_TLS_CERT is not set"),
        (["health", "--tls-ca", "missing.pem"], "TEMPORAL_TLS_CA: cannot read"),
        (["worker", "--registry", "tests.integration.cli_jobs:registry", "--tls-ca", "missing.pem"], "TEMPORAL_TLS_CA"),
        (["cancel", str(uuid.uuid4()), "--tenant", "t1", "--tls-key", "client.key"], "TEMPORAL_TLS_CERT is not set"),
    ],
)
async def test_half_configured_tls_flags_fail_with_one_error_line(
    settings: Settings, pki: Pki, tmp_path: Path, args: list[str], message: str
) -> None:
    """A certificate without its key, or an unreadable CA file: exit 1, one ``Error:`` line, no traceback."""
    args = [str(tmp_path / a) if a.endswith((".pem", ".key")) else a for a in args]
    status, out, err = await algajobs(environment(settings, "127.0.0.1:1"), *args)
    assert status == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err  # health: "Temporal unhealthy: <the error>"
    assert message in lines[0]
    assert "Traceback" not in err + out


async def test_health_reaches_a_tls_cluster_through_the_flags_alone(
    dev_server: str, pki: Pki, settings: Settings, tmp_path: Path
) -> None:
    """``health --tls-ca --tls-server-name --api-key`` is healthy over TLS; without the flags it is not."""
    async with TlsProxy(dev_server, pki) as proxy:
        env = environment(settings, proxy.address)
        flags = ["--tls-ca", str(tmp_path / "ca.pem"), "--tls-server-name", "localhost", "--api-key", API_KEY]
        status, out, err = await algajobs(env, "health", *flags)
        assert status == 0, out + err
        assert "temporal  healthy" in out and "postgres  healthy" in out
        assert set(proxy.alpn) == {"h2"} and not proxy.handshake_errors
        assert {r.get("authorization") for r in proxy.requests} == {f"Bearer {API_KEY}"}
        assert API_KEY not in out + err

        status, out, err = await algajobs(env, "health")  # plaintext against a TLS port
        assert status == 1 and "temporal  UNHEALTHY" in out, out + err


async def test_a_worker_started_with_mutual_tls_flags_runs_jobs(
    dev_server: str, pki: Pki, settings: Settings, tmp_path: Path
) -> None:
    """``worker --tls-ca --tls-cert --tls-key --tls-server-name`` polls through an mTLS proxy and runs a job."""
    queue = f"q-{uuid.uuid4()}"
    async with TlsProxy(dev_server, pki, require_client_cert=True) as proxy:
        env = environment(settings, proxy.address, queue)
        log = tmp_path / "worker.log"
        with log.open("wb") as sink:
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "algajobs", "worker", "--registry", "tests.integration.cli_jobs:registry",
                "--tls-ca", str(tmp_path / "ca.pem"), "--tls-server-name", "localhost",
                "--tls-cert", str(tmp_path / "client.pem"), "--tls-key", str(tmp_path / "client.key"),
                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=sink,
            )  # fmt: skip
        try:
            conf = Settings.load(
                database_url=settings.database_url,
                schema_name=settings.schema_name,
                runner_type="temporal",
                fallback_to_postgres=False,
                temporal_address=proxy.address,
                temporal_task_queue=queue,
                temporal_tls_ca=pki.ca.cert_text,
                temporal_tls_server_name="localhost",
                temporal_tls_cert=pki.client.cert_text,
                temporal_tls_key=pki.client.key_text,
            )
            async with TemporalRunner(conf, cli_registry) as scheduler:
                job = await scheduler.schedule_job("greet", {"name": "tls"}, tenant_id="t1")  # no worker here
                done = await eventually(
                    lambda: scheduler.get_job_status(job.job_id, tenant_id="t1"),
                    lambda j: j.status.is_finished,
                    within=60,
                    interval=0.1,
                )
            assert (done.status, done.result, done.runner_type) == (
                JobStatus.COMPLETED,
                "hello tls",
                RunnerType.TEMPORAL,
            )
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(worker.wait(), 30)
                except TimeoutError:
                    worker.kill()
                    await worker.wait()
        assert worker.returncode == 0, log.read_text()
        assert "worker stopped" in log.read_text()
        assert not proxy.handshake_errors
