"""Fault-test fixtures: worker subprocesses that can be killed, the side-effect tables, a PostgreSQL to break."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from algajobs import PostgresRunner, Settings, migrate
from tests.faults.app import SETUP, registry
from tests.faults.pgcluster import PgCluster

ROOT = Path(__file__).resolve().parents[2]
WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
async def effects_runner(fault_settings: Settings) -> AsyncIterator[PostgresRunner]:
    """A runner (scheduling only) on the fault-test registry, with effect tables created."""
    settings = fault_settings
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        await conn.execute(SETUP)
    async with PostgresRunner(settings, registry) as runner:
        yield runner


@pytest.fixture
def spawn_worker(fault_settings: Settings, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start `algajobs worker` subprocesses on the test schema; every one is killed at teardown.

    ``registry`` names the handlers (``module:attribute``; default: every fault-test handler),
    keywords are extra environment variables.
    """
    settings = fault_settings
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(registry: str = "tests.faults.app:registry", **env: Any) -> subprocess.Popen[bytes]:
        environ = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": settings.database_url,
            "JOB_SCHEMA": settings.schema_name,
            "JOB_RUNNER_TYPE": "postgres",
            "JOB_POLL_INTERVAL": "0.5",
            "JOB_LEASE_SECONDS": str(settings.lease_duration.total_seconds()),
            **{k: str(v) for k, v in env.items()},
        }
        log = (tmp_path / f"worker-{len(procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "algajobs", "worker", "--registry", registry],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


async def scalar(settings: Settings, query: str, params: list[Any] | None = None) -> Any:
    """Run one query on a fresh connection (survives server restarts) and return one value."""
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        cur = await conn.execute(query.encode(), params)
        row = await cur.fetchone()
        return None if row is None else row[0]


@pytest.fixture
def own_postgres() -> Iterator[PgCluster]:
    """A started PostgreSQL cluster of this test's own, free to stop and restart; deleted afterwards."""
    with PgCluster() as cluster:
        cluster.start()
        yield cluster


@pytest.fixture
async def own_settings(own_postgres: PgCluster) -> Settings:
    """Settings for a freshly migrated schema on the test's own cluster (which is deleted, schema and all)."""
    conf = Settings.load(
        database_url=own_postgres.dsn,
        schema_name=f"aj_test_{uuid.uuid4().hex[:12]}",
        runner_type="postgres",
        poll_interval=0.5,
        lease_duration=3,
        shutdown_grace=5,
    )
    await migrate(conf)
    return conf


@pytest.fixture
def fault_settings(request: pytest.FixtureRequest) -> Settings:
    """The settings the fault fixtures use: ``own_settings`` if the test uses ``own_postgres``, else ``settings``."""
    # A test that breaks PostgreSQL asks for its own cluster; then its workers and runners must live there too.
    uses_own = "own_postgres" in request.fixturenames
    settings: Settings = request.getfixturevalue("own_settings" if uses_own else "settings")
    return settings


@pytest.fixture
async def effects(fault_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Effect tables in the test schema; in-process handlers find them through the environment."""
    settings = fault_settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("JOB_SCHEMA", settings.schema_name)
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as conn:
        await conn.execute(SETUP)
    return settings
