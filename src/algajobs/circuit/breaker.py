"""Closed → open → half-open → closed, driven by call outcomes and a clock.

- **closed**: calls go through; ``failure_threshold`` consecutive failures open it.
- **open**: calls are refused (callers fall back) until ``cool_down`` has passed.
- **half-open**: up to ``half_open_probes`` calls go through as probes; a
  success closes the circuit, a failure opens it again for another cool-down.

A busy engine is not a dead one: a *timeout* within ``busy_window`` seconds of
a success does not count towards opening (the engine is answering, just not
fast enough for this call); a refusal always counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger("algajobs.circuit")


class CircuitState(StrEnum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitConfig:
    """Thresholds of a breaker (the defaults open within a few failed calls)."""

    failure_threshold: int = 3
    cool_down: float = 5.0
    """Seconds the circuit stays open before letting a probe through."""
    half_open_probes: int = 1
    busy_window: float = 0.0
    """Seconds after a success during which a timeout means busy, not down."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_probes < 1 or self.cool_down < 0 or self.busy_window < 0:
            raise ValueError("failure_threshold and half_open_probes must be >= 1, cool_down and busy_window >= 0")


Listener = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    """Decides per call whether the guarded engine may be tried."""

    def __init__(
        self,
        config: CircuitConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Listener | None = None,
    ) -> None:
        self.config = config or CircuitConfig()
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes = 0
        self._last_success: float | None = None

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit past its cool-down reads half-open)."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.config.cool_down:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """Return whether a call may go to the guarded engine now (counts half-open probes)."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and self._probes < self.config.half_open_probes:
            self._probes += 1
            return True
        return False

    def release(self) -> None:
        """An allowed call ended without reaching the engine: give its probe slot back.

        Harmless after ``record_success``/``record_failure`` (they reset probes),
        so callers can release in a ``finally``.
        """
        if self._state is CircuitState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def record_success(self) -> None:
        """A call succeeded: reset failures; a half-open circuit closes."""
        self._failures = 0
        self._last_success = self._clock()
        if self._state is not CircuitState.CLOSED:
            self._move(CircuitState.CLOSED)

    def record_failure(self, *, timed_out: bool = False) -> None:
        """A call failed: count it; at the threshold (or any half-open failure) open.

        A timeout soon after a success (within ``busy_window``) is not counted
        while closed: the engine answers, it is only busy.
        """
        recent = self._last_success is not None and self._clock() - self._last_success < self.config.busy_window
        if timed_out and recent and self._state is CircuitState.CLOSED:
            return
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self.config.failure_threshold
        ):
            self._opened_at = self._clock()
            self._move(CircuitState.OPEN)

    def _move(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        self._probes = 0
        if new is CircuitState.CLOSED:
            self._failures = 0
        log.warning("circuit %s -> %s", old, new)
        if self._on_change is not None:
            self._on_change(old, new)
