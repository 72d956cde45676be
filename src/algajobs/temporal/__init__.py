"""The Temporal engine: client connection, runner and worker.

Imports nothing at package level so ``activities`` can use ``records``
without a cycle.
"""
