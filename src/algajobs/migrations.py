"""Versioned schema migrations, applied by the library under an advisory lock."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .db import Transaction, translate, with_retry
from .settings import Settings
from .sql import migration_files


async def migrate(settings: Settings) -> list[str]:
    """Bring the configured schema up to date; return the migrations applied now.

    Safe to run from many processes at once: they serialize on an advisory
    lock and each run, with its ledger rows, is one transaction. PostgreSQL
    unreachable for ``JOB_DB_RETRY_SECONDS`` raises EngineUnavailableError.
    """
    try:
        return await with_retry(
            lambda wait: _apply(settings, wait), deadline=settings.db_retry_deadline.total_seconds(), what="migrate"
        )
    except psycopg.Error as exc:
        raise translate(exc, "migrate") from exc


async def _apply(settings: Settings, wait: float) -> list[str]:
    schema = sql.Identifier(settings.schema_name)
    applied_now: list[str] = []
    connect = psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, row_factory=dict_row, connect_timeout=max(int(wait), 1)
    )
    async with await connect as conn, conn.transaction():
        tx = Transaction(conn)
        await tx.execute("lock_migrations", {"schema": settings.schema_name})
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(schema))
        await tx.execute("create_migration_ledger")
        done = {row["version"] for row in await tx.fetch("applied_migrations")}
        for version, name, text in migration_files():
            if version in done:
                continue
            await conn.execute(text)
            await tx.execute("record_migration", {"version": version, "name": name})
            applied_now.append(f"{version:04d}_{name}")
    return applied_now
