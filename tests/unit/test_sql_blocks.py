"""The SQL files: named blocks and numbered migrations load."""

import pytest

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
