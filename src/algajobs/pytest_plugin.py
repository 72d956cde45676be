"""pytest fixtures for testing your handlers with algajobs (the ``algajobs`` ``pytest11`` entry point).

Installed with the package; nothing starts unless a test asks for a fixture::

    @pytest.fixture
    def algajobs_registry() -> JobRegistry:
        return myapp.jobs.registry

    async def test_invoice(algajobs_jobs: JobsKit) -> None:        # runs once per engine
        assert await algajobs_jobs.run("generate-invoice", {"billing_cycle_id": "c1"}, tenant_id="acme")

Fixtures:

- ``algajobs_registry``: your :class:`JobRegistry`; override it (the default
  fails, saying so).
- ``algajobs_engine``: ``"temporal"`` and ``"postgres"``; every test using the
  kit runs on both. Narrow one test with
  ``@pytest.mark.parametrize("algajobs_engine", ["postgres"])``, or override it.
- ``algajobs_settings``: a dict of :class:`Settings` overrides (default empty).
- ``algajobs_database_url`` (session): the PostgreSQL the kit uses (below).
- ``algajobs_jobs``: the :class:`~algajobs.testing.JobsKit`, a started runner
  on a throwaway schema.

PostgreSQL: ``ALGAJOBS_TEST_DATABASE_URL``, else ``DATABASE_URL``, else
``127.0.0.1:5432`` (``ALGAJOBS_LOCAL_POSTGRES_URL``) if it answers, else the
embedded server (``algajobs[embedded]``), else a throwaway ``initdb``
cluster, for the whole session (:mod:`algajobs.devstack`). Async fixtures
need ``pytest-asyncio``: in its strict mode mark tests ``@pytest.mark.asyncio``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from . import devstack
from .registry import JobRegistry
from .testing import JobsKit, jobs_kit

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the kit's fixtures then say what to install
    pytest_asyncio = None  # type: ignore[assignment]

ENGINES = ("temporal", "postgres")


def _async_fixture(func: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture``, or a fixture explaining that pytest-asyncio is missing."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(func)

    @pytest.fixture(name=func.__name__)
    def missing() -> None:  # pragma: no cover - exercised only without pytest-asyncio
        pytest.fail(f"{func.__name__} needs pytest-asyncio: pip install 'algajobs[testing]'")

    return missing


@pytest.fixture
def algajobs_registry() -> JobRegistry:
    """Your registry: override this fixture in your conftest.py to return it."""
    pytest.fail("define an 'algajobs_registry' fixture returning your JobRegistry (see algajobs.pytest_plugin)")


@pytest.fixture(params=ENGINES)
def algajobs_engine(request: pytest.FixtureRequest) -> str:
    """The engine under test; by default each kit test runs on both (the parity promise)."""
    engine: str = request.param
    return engine


@pytest.fixture
def algajobs_settings() -> dict[str, Any]:
    """Settings overrides for the kit's runner (field names of ``Settings``); override to change them."""
    return {}


@pytest.fixture(scope="session")
def algajobs_database_url() -> Iterator[str]:
    """The PostgreSQL every kit of this session uses, started if need be and stopped at the end."""
    configured = os.environ.get("ALGAJOBS_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    with devstack.open_postgres(configured=configured) as url:
        yield url


@_async_fixture
async def algajobs_jobs(
    algajobs_registry: JobRegistry,
    algajobs_engine: str,
    algajobs_settings: dict[str, Any],
    algajobs_database_url: str,
) -> AsyncIterator[JobsKit]:
    """A :class:`JobsKit`: a started runner on a throwaway schema (and a time-skipping server on Temporal)."""
    async with jobs_kit(
        algajobs_registry, engine=algajobs_engine, database_url=algajobs_database_url, settings=algajobs_settings
    ) as kit:
        yield kit
