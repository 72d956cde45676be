"""Operator sessions and CSRF tokens: pure functions over strings, no I/O.

An operator signs in with ``JOB_DASHBOARD_TOKEN`` (checked with
:func:`hmac.compare_digest`); the session cookie then holds an issue time and
an HMAC of it keyed by that token, never the token itself, so changing the
token signs every operator out. Every POST also carries a per-session CSRF
token twice, in a cookie and in a hidden form field (double submit); a
cross-site form can send the cookie but cannot read it to fill the field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

CSRF_COOKIE = "algajobs_csrf"
CSRF_FIELD = "csrf"
SESSION_COOKIE = "algajobs_operator"
SESSION_SECONDS = 12 * 3600
_PURPOSE = b"algajobs-dashboard-operator:"


def new_csrf_token() -> str:
    """A fresh random CSRF token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, field: str | None) -> bool:
    """True when the form field repeats the cookie's token (both present)."""
    if not cookie or not field:
        return False
    return hmac.compare_digest(cookie.encode(), field.encode())


def token_ok(given: str | None, token: str) -> bool:
    """True when ``given`` is the operator token."""
    if not given or not token:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def new_session(token: str, *, now: float | None = None) -> str:
    """A session cookie value for an operator who presented ``token``."""
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_sign(token, issued)}"


def session_ok(value: str | None, token: str, *, now: float | None = None) -> bool:
    """True for a session cookie signed with ``token`` and younger than SESSION_SECONDS."""
    if not value or not token or value.count(".") != 1:
        return False
    issued, signature = value.split(".")
    if not issued.isascii() or not issued.isdigit():
        return False
    age = (time.time() if now is None else now) - int(issued)
    if not 0 <= age <= SESSION_SECONDS:
        return False
    return hmac.compare_digest(signature.encode(), _sign(token, issued).encode())


def _sign(token: str, issued: str) -> str:
    return hmac.new(token.encode(), _PURPOSE + issued.encode(), hashlib.sha256).hexdigest()
