"""The Temporal engine: connection, admission (workflow starts, Schedules), health and a supervised worker.

Never imports ``algajobs.fallback``: the engines meet only in the runner.
"""
