"""Retry semantics, defined once and translated by each engine."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RetryPolicy(BaseModel):
    """How often and how far apart a failing handler is retried.

    The meaning matches Temporal's ``RetryPolicy``: attempt ``n`` (1-based) that
    fails waits ``initial_interval * backoff_coefficient ** (n - 1)``, capped at
    ``maximum_interval``, before attempt ``n + 1``. ``max_attempts`` counts the
    first run. Exceptions whose type (or a base type) is in ``non_retryable``
    fail the job at once.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    max_attempts: int = Field(default=3, ge=1)
    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = Field(default=2.0, ge=1.0)
    maximum_interval: timedelta = timedelta(seconds=30)
    non_retryable: tuple[type[BaseException], ...] = ()

    @model_validator(mode="after")
    def _intervals_make_sense(self) -> RetryPolicy:
        if self.initial_interval < timedelta(0):
            raise ValueError("initial_interval must not be negative")
        if self.maximum_interval < self.initial_interval:
            raise ValueError("maximum_interval must be at least initial_interval")
        return self

    def delay_after(self, attempt: int) -> timedelta:
        """Return the wait before the attempt that follows failed attempt ``attempt``."""
        seconds = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        return min(timedelta(seconds=seconds), self.maximum_interval)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """Return whether failed attempt ``attempt`` raising ``error`` gets another try."""
        if attempt >= self.max_attempts:
            return False
        return not isinstance(error, self.non_retryable)

    @property
    def non_retryable_names(self) -> tuple[str, ...]:
        """The non-retryable exception type names (Temporal matches by name)."""
        return tuple(t.__name__ for t in self.non_retryable)
