"""The PostgreSQL engine: a ``SKIP LOCKED`` queue with ``LISTEN/NOTIFY`` pickup.

Never imports ``temporalio``: this engine must work while Temporal is gone.
"""

from .engine import PostgresEngine
from .worker import PostgresWorker

__all__ = ["PostgresEngine", "PostgresWorker"]
