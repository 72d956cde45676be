"""Recurrence strings: five-field cron (UTC) or a plain interval like ``"15 minutes"``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from croniter import croniter

from .errors import InvalidScheduleError

_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


class SpecKind(StrEnum):
    """How a recurrence string is read."""

    CRON = "cron"
    INTERVAL = "interval"


@dataclass(frozen=True)
class ScheduleSpec:
    """A parsed recurrence that can compute its next firing time."""

    text: str
    kind: SpecKind
    interval: timedelta | None = None

    @classmethod
    def parse(cls, value: str | timedelta) -> ScheduleSpec:
        """Parse a cron expression or interval; raise InvalidScheduleError if neither."""
        if isinstance(value, timedelta):
            if value < timedelta(seconds=1):
                raise InvalidScheduleError("interval must be at least 1 second")
            return cls(f"{int(value.total_seconds())} seconds", SpecKind.INTERVAL, value)
        if not isinstance(value, str) or not value.strip():
            raise InvalidScheduleError(f"schedule must be a cron expression or interval, got {value!r}")
        match = _INTERVAL.match(value)
        if match:
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
            if seconds < 1:
                raise InvalidScheduleError(f"interval {value!r} must be positive")
            return cls(value.strip(), SpecKind.INTERVAL, timedelta(seconds=seconds))
        text = " ".join(value.split())
        if len(text.split(" ")) != 5 or not croniter.is_valid(text):
            raise InvalidScheduleError(
                f"invalid schedule {value!r}: expected five-field cron like '0 0 * * *' "
                "or an interval like '15 minutes'"
            )
        return cls(text, SpecKind.CRON)

    def next_after(self, moment: datetime) -> datetime:
        """Return the first firing strictly after ``moment`` (UTC)."""
        moment = moment.astimezone(UTC)
        if self.interval is not None:
            return moment + self.interval
        nxt: datetime = croniter(self.text, moment).get_next(datetime)
        return nxt.astimezone(UTC)

    def next_due(self, last_due: datetime, now: datetime) -> datetime:
        """The firing after ``last_due``, skipping ticks missed while nothing ran."""
        nxt = self.next_after(last_due)
        if nxt <= now:
            nxt = self.next_after(now)
        return nxt
