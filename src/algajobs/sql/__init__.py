"""Named SQL blocks, loaded once from ``queries.sql``.

Queries are typed ``LiteralString`` so psycopg's strict typing rejects any
query assembled from runtime strings.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import LiteralString

_BLOCK = re.compile(r"^-- name: (\w+)\n", re.MULTILINE)


def _parse(text: str) -> dict[str, LiteralString]:
    parts = _BLOCK.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        # Comments and indentation are for readers of queries.sql. What is sent stays short:
        # psycopg caches the conversion of statements up to 4096 bytes only, and redoes it for
        # every execution of a longer one (0.1-0.2 ms of CPU per claim before this).
        lines = [line.strip() for line in body.strip().splitlines()]
        lines = [line for line in lines if line and not line.startswith("--")]
        if name in queries:
            raise ValueError(f"queries.sql defines {name!r} twice")
        queries[name] = "\n".join(lines)  # shipped file text, never user input
    return queries


QUERIES: dict[str, LiteralString] = _parse(
    resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
)


def migration_files() -> list[tuple[int, str, LiteralString]]:
    """Return ``(version, name, sql)`` for every shipped migration, in order."""
    folder = resources.files(__package__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            sql: LiteralString = entry.read_text(encoding="utf-8")
            found.append((int(match.group(1)), match.group(2), sql))
    return sorted(found)
