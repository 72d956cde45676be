"""Versioned schema migrations, applied by the library under an advisory lock."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .settings import Settings
from .sql import migration_files

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(settings: Settings) -> list[str]:
    """Bring the configured schema up to date; return the migrations applied now.

    Safe to run from many processes at once: they serialize on an advisory
    lock and each migration runs, with its ledger row, in one transaction.
    """
    schema = settings.schema_name
    applied_now: list[str] = []
    connect = psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
    async with await connect as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"algajobs-migrate:{schema}"])
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        await conn.execute(_LEDGER)
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for version, name, text in migration_files():
            if version in done:
                continue
            await conn.execute(text)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", [version, name])
            applied_now.append(f"{version:04d}_{name}")
    return applied_now
