"""Recurrence strings: cron and interval parsing and next-tick arithmetic."""

from datetime import UTC, datetime, timedelta

import pytest

from algajobs import InvalidScheduleError
from algajobs.schedule_spec import ScheduleSpec, SpecKind


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24 hours", 86400), ("15 minutes", 900), ("1 second", 1), ("2 Days", 172800), ("1 week", 604800)],
)
def test_intervals_parse(text: str, seconds: int) -> None:
    """Plain English intervals become timedeltas."""
    spec = ScheduleSpec.parse(text)
    assert spec.kind is SpecKind.INTERVAL
    assert spec.interval == timedelta(seconds=seconds)


def test_cron_next_tick_is_in_utc() -> None:
    """A daily cron fires at the next midnight UTC."""
    spec = ScheduleSpec.parse("0 0 * * *")
    assert spec.kind is SpecKind.CRON
    assert spec.next_after(datetime(2026, 1, 1, 13, 5, tzinfo=UTC)) == datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "soon", "0 0 * *", "61 * * * *", "0 minutes", "-5 minutes", "1 fortnight"])
def test_invalid_specs_raise_typed_error(text: str) -> None:
    """Anything that is neither cron nor interval is rejected."""
    with pytest.raises(InvalidScheduleError):
        ScheduleSpec.parse(text)


def test_missed_ticks_are_skipped_not_replayed() -> None:
    """After downtime the next tick is in the future, not a backlog of past ones."""
    spec = ScheduleSpec.parse("1 minute")
    last = datetime(2026, 1, 1, tzinfo=UTC)
    now = last + timedelta(hours=3)
    assert spec.next_due(last, now) > now
