"""Fixtures: every test that touches PostgreSQL gets its own freshly migrated schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from algajobs import JobRegistry, PostgresRunner, Settings, migrate
from tests.helpers import DSN

_TIERS = ("unit", "integration", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (its folder), so ``-m unit`` or ``-m "not faults"`` picks a tier."""
    for item in items:
        tier = next((t for t in _TIERS if f"tests/{t}/" in item.path.as_posix()), None)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
async def settings() -> AsyncIterator[Settings]:
    """Settings pointing at a new, migrated schema that is dropped afterwards."""
    schema = f"aj_test_{uuid.uuid4().hex[:12]}"
    conf = Settings.load(
        database_url=DSN,
        schema_name=schema,
        runner_type="postgres",
        poll_interval=0.5,
        lease_duration=3,
        shutdown_grace=5,
    )
    await migrate(conf)
    yield conf
    async with await psycopg.AsyncConnection.connect(DSN, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def registry() -> JobRegistry:
    """An empty registry for the test to fill."""
    return JobRegistry()


@pytest.fixture
async def runner(settings: Settings, registry: JobRegistry) -> AsyncIterator[PostgresRunner]:
    """An open PostgreSQL runner (not processing until the test calls start())."""
    async with PostgresRunner(settings, registry) as opened:
        yield opened


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """A raw connection on the test schema, for checks beneath the API."""
    async with await psycopg.AsyncConnection.connect(
        DSN, autocommit=True, options=f"-c search_path={settings.schema_name}"
    ) as connection:
        yield connection
