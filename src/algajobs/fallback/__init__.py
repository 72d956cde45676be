"""The PostgreSQL engine: a ``SKIP LOCKED`` queue with ``LISTEN/NOTIFY`` pickup.

Never imports ``temporalio``: this engine must work while Temporal is gone.
"""

from .runner import PostgresRunner
from .worker import PostgresWorker

__all__ = ["PostgresRunner", "PostgresWorker"]
