"""The dashboard's operator sessions, CSRF checks, list filters and keyset cursor, without a server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from algajobs.dashboard import security
from algajobs.dashboard.filters import Cursor, JobFilter, parse_filter
from algajobs.dashboard.present import REDACTED, redact
from algajobs.enums import JobStatus, RunnerType
from algajobs.errors import ValidationError


def test_a_session_signed_with_the_token_is_accepted_until_it_expires() -> None:
    """A session cookie verifies with its token, and not with another token or after SESSION_SECONDS."""
    cookie = security.new_session("tok", now=1_000_000)
    assert security.session_ok(cookie, "tok", now=1_000_000 + 60)
    assert not security.session_ok(cookie, "other", now=1_000_000 + 60)
    assert not security.session_ok(cookie, "tok", now=1_000_000 + security.SESSION_SECONDS + 1)
    assert not security.session_ok(cookie, "tok", now=1_000_000 - 10)  # issued in the future
    assert "tok" not in cookie


@pytest.mark.parametrize("forged", [None, "", "x", "1.2.3", "abc.def", "\uff11\uff12\uff13.abc", "1000000.deadbeef"])
def test_malformed_or_forged_sessions_are_refused(forged: str | None) -> None:
    """Anything but a cookie this module signed is refused, without raising."""
    assert not security.session_ok(forged, "tok", now=1_000_000)


def test_csrf_needs_the_same_token_twice() -> None:
    """The double submit holds only when cookie and field are present and equal."""
    token = security.new_csrf_token()
    assert security.csrf_ok(token, token)
    assert not security.csrf_ok(token, token + "x")
    assert not security.csrf_ok(None, token)
    assert not security.csrf_ok(token, "")
    assert security.new_csrf_token() != token


def test_operator_token_comparison() -> None:
    """Only the exact token signs in; an empty configured token never matches."""
    assert security.token_ok("s3cret", "s3cret")
    assert not security.token_ok("s3cre", "s3cret")
    assert not security.token_ok("", "")
    assert not security.token_ok(None, "s3cret")


def test_cursor_round_trips_and_rejects_garbage() -> None:
    """A cursor decodes to the row it was made from; anything else is a ValidationError."""
    cursor = Cursor(datetime(2024, 5, 1, 12, 30, 1, 123456, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "abc", "12.nothex", "1" * 30 + "." + uuid.uuid4().hex, "\uff11.abc"):
        with pytest.raises(ValidationError):
            Cursor.decode(bad)


def test_filters_parse_and_render_back() -> None:
    """Query parameters become typed filters and back; empty values mean no filter."""
    parsed = parse_filter(
        {"tenant": "acme", "status": "failed", "engine": "temporal", "type": "", "since": "2024-05-01T12:00"}
    )
    assert parsed == JobFilter(
        tenant="acme",
        status=JobStatus.FAILED,
        engine=RunnerType.TEMPORAL,
        since=datetime(2024, 5, 1, 12, tzinfo=UTC),
    )
    assert parse_filter(parsed.query()) == parsed
    assert parsed.pinned("globex").tenant == "globex"
    assert parsed.pinned(None) is parsed


@pytest.mark.parametrize(
    "args",
    [{"status": "exploded"}, {"engine": "kafka"}, {"since": "yesterday"}, {"until": "\uff12\uff10\uff12\uff14-01-01"}],
)
def test_bad_filters_are_validation_errors(args: dict[str, str]) -> None:
    """An unknown status or engine, or a time that is not YYYY-MM-DDTHH:MM, is refused."""
    with pytest.raises(ValidationError):
        parse_filter(args)


def test_secret_looking_payload_keys_are_redacted() -> None:
    """Values under password/token/api-key-like keys are replaced at any depth; others are kept."""
    shown = redact({"user": "ann", "password": "p", "nested": [{"API_KEY": "k", "n": 1}], "auth": {"token": "t"}})
    assert shown == {
        "user": "ann",
        "password": REDACTED,
        "nested": [{"API_KEY": REDACTED, "n": 1}],
        "auth": {"token": REDACTED},
    }
