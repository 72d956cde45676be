"""The circuit breaker that keeps scheduling off a dead Temporal cluster.

A pure state machine: no I/O imports, time from an injected clock.
"""

from .breaker import CircuitBreaker, CircuitConfig, CircuitState

__all__ = ["CircuitBreaker", "CircuitConfig", "CircuitState"]
