"""The FastAPI example runs for real: its app (uvicorn) schedules, its worker process runs the job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from algajobs import Settings
from tests.helpers import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` from the examples folder; SIGTERM it on exit (SIGKILL if it will not stop)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=EXAMPLES, env=env, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def _refusing_port(stack: ExitStack) -> int:
    """A loopback port that is bound but never listens, so every connection to it is refused."""
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return port


def _environment(settings: Settings, engine: str, stack: ExitStack) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": settings.database_url,
        "JOB_SCHEMA": settings.schema_name,
        "JOB_POLL_INTERVAL": "0.5",
        "JOB_SHUTDOWN_GRACE": "5",
    }
    if engine == "postgres":
        env["JOB_RUNNER_TYPE"] = "postgres"
    else:  # the default failover runner, with its Temporal cluster down for the whole test
        env |= {
            "JOB_RUNNER_TYPE": "temporal",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{_refusing_port(stack)}",
            "JOB_CIRCUIT_CALL_TIMEOUT": "0.5",
        }
    return env


@pytest.mark.parametrize("engine", ["postgres", "failover-temporal-down"])
async def test_the_fastapi_example_schedules_a_job_its_worker_runs(
    settings: Settings, engine: str, tmp_path: Path
) -> None:
    """POST /invoices on the real app schedules a job, the worker process runs it, GET /jobs/{id} shows the result."""
    with ExitStack() as stack:
        env = _environment(settings, engine, stack)
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        worker = stack.enter_context(
            _process([sys.executable, "-m", "fastapi_service.worker"], env, tmp_path / "worker.log")
        )
        app = stack.enter_context(
            _process(
                [sys.executable, "-m", "uvicorn", "fastapi_service.app:app", "--fd", str(listener.fileno())],
                env,
                tmp_path / "app.log",
                pass_fds=(listener.fileno(),),
            )
        )
        client = httpx2.AsyncClient(base_url=base, timeout=10)
        try:
            health = await eventually(
                lambda: _get(client, "/health", app, tmp_path / "app.log"), lambda r: r is not None, within=30
            )
            assert health is not None and health.status_code == 200, health and health.text

            created = await client.post(
                "/invoices", json={"customer_id": "c-42", "amount_cents": 1999}, headers={"X-Tenant-ID": "acme"}
            )
            assert created.status_code == 202, created.text
            job_id = created.json()["job_id"]
            assert created.json()["runner_type"] == "postgres"  # failover: Temporal refused, PostgreSQL took it

            async def status() -> dict[str, Any]:
                assert worker.poll() is None, _read(tmp_path / "worker.log")
                answer = await client.get(f"/jobs/{job_id}", headers={"X-Tenant-ID": "acme"})
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()
                return body

            job = await eventually(status, lambda b: b["status"] in ("completed", "failed"), within=30, interval=0.1)
            assert job["status"] == "completed", (job, _read(tmp_path / "worker.log"))
            assert job["progress"] == 100
            assert job["result"] == {"number": f"INV-{job_id[:8].upper()}", "customer_id": "c-42", "total_cents": 1999}

            other = await client.get(f"/jobs/{job_id}", headers={"X-Tenant-ID": "globex"})
            assert other.status_code == 404  # another tenant's job does not exist for it
            refused = await client.post(
                "/invoices", json={"customer_id": "c-42", "amount_cents": 0}, headers={"X-Tenant-ID": "acme"}
            )
            assert refused.status_code == 422
        finally:
            await client.aclose()

        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(timeout=20) == 0, _read(tmp_path / "worker.log")
        assert time.monotonic() - started < 15
        assert "worker stopped" in _read(tmp_path / "worker.log")


async def _get(client: httpx2.AsyncClient, path: str, proc: subprocess.Popen[bytes], log: Path) -> Any:
    """GET ``path``, or None while the server is not listening yet (failing at once if it died)."""
    assert proc.poll() is None, _read(log)
    try:
        return await client.get(path)
    except httpx2.TransportError:
        return None


def _read(log: Path) -> str:
    """A process's output so far, for an assertion message."""
    return log.read_text(errors="replace")
