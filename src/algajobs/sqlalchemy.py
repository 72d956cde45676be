"""SQLAlchemy adapter: enqueue jobs in the transaction of an ``AsyncSession`` (install ``algajobs[sqlalchemy]``).

``connection=`` takes a psycopg ``AsyncConnection`` (DESIGN §12); an
application on SQLAlchemy's asyncio extension with the ``postgresql+psycopg``
dialect already holds one, beneath its session::

    async with sessionmaker() as session, session.begin():
        session.add(Invoice(n=1))
        await runner.schedule_job("invoice", {"n": 1}, tenant_id="t1",
                                  connection=await psycopg_connection(session))

The job row is then one more write of the session's transaction: rolled back
with it, or committed with it. Other drivers (asyncpg) hold no psycopg
connection to join and are refused.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .errors import ValidationError

try:
    from sqlalchemy.exc import InvalidRequestError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("algajobs.sqlalchemy needs SQLAlchemy 2: pip install 'algajobs[sqlalchemy]'") from exc

__all__ = ["psycopg_connection"]


async def psycopg_connection(session_or_connection: AsyncSession | AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg ``AsyncConnection`` under an SQLAlchemy ``AsyncSession`` or ``AsyncConnection``, in its transaction.

    Pass the result as ``connection=`` to any ``schedule_*`` call. A session
    begins its transaction here if it has none yet (as its first statement
    would), and so does a connection: the job is then committed or rolled back
    by ``session.commit()`` / ``rollback()`` like the session's own writes. A
    session bound to several engines yields its default bind's connection; for
    another, pass ``await session.connection(bind_arguments=...)`` instead.

    Raises :class:`~algajobs.ValidationError` for anything else: a synchronous
    ``Session``, a driver other than psycopg (``postgresql+asyncpg``), a closed
    connection, or one in ``AUTOCOMMIT`` isolation (the job would commit on
    its own, before the caller's transaction).
    """
    try:
        connection = await _in_transaction(session_or_connection)
        raw = (await connection.get_raw_connection()).driver_connection
    except InvalidRequestError as exc:  # closed, or never started ('engine.connect()' not awaited)
        raise ValidationError(f"the SQLAlchemy connection is not usable: {exc}") from exc
    dialect = f"{connection.dialect.name}+{connection.dialect.driver}"
    if not isinstance(raw, psycopg.AsyncConnection):
        raise ValidationError(
            f"connection= needs the async psycopg driver ('postgresql+psycopg://' URLs); this session uses {dialect}"
        )
    if raw.autocommit:
        raise ValidationError(
            "the SQLAlchemy connection runs in AUTOCOMMIT isolation: the job would commit on its own; "
            "use a connection with a transaction"
        )
    return raw


async def _in_transaction(session_or_connection: object) -> AsyncConnection:
    if isinstance(session_or_connection, AsyncSession):
        return await session_or_connection.connection()  # begins the session's transaction if it has none
    if isinstance(session_or_connection, AsyncConnection):
        if not session_or_connection.in_transaction():
            # As autobegin would: without a SQLAlchemy transaction, commit() is a no-op and the job is rolled back.
            await session_or_connection.begin()
        return session_or_connection
    raise ValidationError(
        "expected an SQLAlchemy AsyncSession or AsyncConnection (sqlalchemy.ext.asyncio), "
        f"not {type(session_or_connection).__name__}"
    )
