"""Recurrence strings: five-field cron (UTC) or a plain interval like ``"15 minutes"``.

Limits: an interval is from :data:`MIN_INTERVAL` (1 second) to
:data:`MAX_INTERVAL` (3,650 days, about ten years); a cron expression must
fire at some time (``"0 0 31 2 *"``, 31 February, never does). Both are
ASCII: ``int()`` would read Arabic-Indic or fullwidth digits as 0-9.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from croniter import CroniterError, croniter

from .errors import InvalidScheduleError
from .validation import preview

# re.ASCII: without it \s takes Unicode spaces and IGNORECASE lets U+017F (long s) match "s".
_INTERVAL = re.compile(r"\s*([0-9]+)\s*(second|minute|hour|day|week)s?\s*", re.IGNORECASE | re.ASCII)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
MIN_INTERVAL = timedelta(seconds=1)
"""Shortest interval accepted."""
MAX_INTERVAL = timedelta(days=3650)
"""Longest interval accepted (about ten years); longer ones overflow date arithmetic or mean a mistake."""
_MAX_DIGITS = 12  # MAX_INTERVAL is nine digits of seconds; int() refuses 4,300 digits and more


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
        """Parse a cron expression or interval; raise InvalidScheduleError if neither or out of bounds.

        Intervals run from MIN_INTERVAL (1 s) to MAX_INTERVAL (3,650 days);
        a cron expression must be five ASCII fields that fire at some time.
        """
        if isinstance(value, timedelta):
            _check_bounds(value.total_seconds(), value)
            return cls(f"{int(value.total_seconds())} seconds", SpecKind.INTERVAL, value)
        if not isinstance(value, str) or not value.strip():
            raise InvalidScheduleError(f"schedule must be a cron expression or interval, got {preview(value)}")
        if not value.isascii():
            raise InvalidScheduleError(f"schedule {preview(value)} must be ASCII (digits 0-9, plain spaces)")
        return _parse_text(value)

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


@functools.lru_cache(maxsize=1024)
def _parse_text(value: str) -> ScheduleSpec:
    """Parse an ASCII schedule string; cached, since workers re-read stored specs every tick."""
    match = _INTERVAL.fullmatch(value)
    if match:
        digits, unit = match.group(1).lstrip("0") or "0", match.group(2).lower()
        seconds = int(digits) * _UNIT_SECONDS[unit] if len(digits) <= _MAX_DIGITS else float("inf")
        _check_bounds(seconds, value)
        return ScheduleSpec(value.strip(), SpecKind.INTERVAL, timedelta(seconds=seconds))
    text = " ".join(value.split())
    if not text.isprintable() or len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidScheduleError(
            f"invalid schedule {preview(value)}: expected five-field cron like '0 0 * * *' "
            "or an interval like '15 minutes'"
        )
    try:
        croniter(text, datetime.now(UTC)).get_next(datetime)
    except (CroniterError, ValueError, OverflowError):
        raise InvalidScheduleError(
            f"cron {text!r} never fires (a date that does not exist, e.g. 31 February)"
        ) from None
    return ScheduleSpec(text, SpecKind.CRON)


def _check_bounds(seconds: float, given: object) -> None:
    if seconds < MIN_INTERVAL.total_seconds():
        raise InvalidScheduleError(f"interval {preview(given)} is under the minimum of 1 second")
    if seconds > MAX_INTERVAL.total_seconds():
        raise InvalidScheduleError(f"interval {preview(given)} is over the maximum of {MAX_INTERVAL.days} days")
