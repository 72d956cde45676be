"""The SQL files: named blocks and numbered migrations load."""

import pytest
from psycopg import _queries as psycopg_queries

from algajobs.sql import QUERIES, _parse, migration_files


def test_queries_load_by_name() -> None:
    """Every block has a name and a body."""
    assert {"claim_jobs", "complete_jobs", "insert_job", "cancel_job", "recover_expired"} <= set(QUERIES)
    assert all(body.strip() for body in QUERIES.values())


def test_migrations_are_numbered_without_gaps() -> None:
    """Versions run 1, 2, 3... so ordering is unambiguous."""
    versions = [v for v, _, _ in migration_files()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_name_defined_twice_is_refused() -> None:
    """Two blocks with one name would silently shadow each other."""
    with pytest.raises(ValueError, match="twice"):
        _parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_every_query_fits_the_drivers_statement_cache() -> None:
    """Psycopg converts a statement once if it is at most 4096 bytes, else on every execution."""
    limit = getattr(psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
    too_long = {name: len(body.encode()) for name, body in QUERIES.items() if len(body.encode()) > limit}
    assert not too_long, f"over {limit} bytes as sent: {too_long}"


def test_comments_and_indentation_are_not_sent() -> None:
    """Full-line comments go, whatever their indentation; the code is unchanged."""
    parsed = _parse("-- name: a\n-- what it does\nSELECT 1\n    -- why\n    FROM t  -- kept: not a full line\n;\n")
    assert parsed == {"a": "SELECT 1\nFROM t  -- kept: not a full line\n;"}
