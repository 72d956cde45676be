r"""Checks on caller input, run before anything is written.

Two rules hold for every field. Text bound for PostgreSQL holds neither NUL
(``\x00``) nor surrogate code points: ``text`` and ``jsonb`` refuse both.
Numbers are ASCII digits only: ``int()`` and ``uuid.UUID()`` would read
Arabic-Indic or fullwidth digits as 0-9. Patterns are applied with
``fullmatch``, since ``$`` also matches before a trailing newline.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from .errors import (
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidTenantError,
    PayloadTooLargeError,
    PayloadValidationError,
    ValidationError,
)

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
# Queue names become part of Temporal task-queue names: short and plain.
_QUEUE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_QUEUE = "default"
"""The queue a job type belongs to unless its handler names another."""
# The spellings uuid.UUID() documents, in ASCII hex: it alone would also take
# signs, underscores, spaces and any Unicode digit (it ends in int(text, 16)).
_UUID = re.compile(r"(?:urn:uuid:)?\{?[0-9A-Fa-f]{8}(?:-?[0-9A-Fa-f]{4}){3}-?[0-9A-Fa-f]{12}\}?")
# In JSON text a NUL is "\u0000" after an even run of backslashes; after an odd
# run the first backslash escapes another, and the text is a literal "\u0000".
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_PREVIEW = 60
MAX_PAGE = 1_000
MAX_RESULT_BYTES = 64 * 1024 * 1024
"""A handler result larger than this fails its job: rows and batches of them must stay writable."""
"""Most rows one ``list_jobs`` call returns."""
MAX_OFFSET = 2**63 - 1
"""Largest ``list_jobs`` offset: PostgreSQL's ``bigint``."""


def preview(value: object) -> str:
    """``repr(value)``, shortened to fit in an error message."""
    if isinstance(value, str | bytes) and len(value) > _PREVIEW:
        value = value[:_PREVIEW]
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= _PREVIEW else f"{text[: _PREVIEW - 3]}..."


def storable_text(text: str | None) -> str | None:
    r"""``text`` as PostgreSQL can store it: a NUL or a lone surrogate becomes its escape (``\x00``, ``\ud800``).

    For text the library writes on a user's behalf, such as an exception's
    message: refusing it would lose the error it reports. None stays None.
    """
    if text is None or storable(text):
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode()


def storable(value: str) -> bool:
    """True if PostgreSQL can store ``value``: no NUL and no surrogate code points."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def tenant_id(value: object) -> str:
    """Return ``value`` as a tenant id (a UUID or 1..128 safe characters)."""
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise InvalidTenantError(
            f"malformed tenant_id {preview(value)}: expected a UUID or 1..128 ASCII letters, digits"
            " and _.:@- starting with a letter or digit"
        )
    return value


def job_id(value: object) -> UUID:
    """Return ``value`` as a job id UUID (ASCII hex, hyphens optional), or raise InvalidJobIdError."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID.fullmatch(value):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidJobIdError(f"malformed job_id {preview(value)}")


def run_at(value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidRunAtError(f"run_at must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidRunAtError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
    try:
        value.astimezone(UTC)  # engines compute in UTC; 9999-12-31 23:00-05:00 is past datetime.max there
    except (OverflowError, ValueError):
        raise InvalidRunAtError(f"run_at {preview(value)} is outside the datetime range once in UTC") from None
    return value


def encode_payload(data: Any, limit: int) -> str:
    """Serialize validated payload values to the JSON text PostgreSQL stores, enforcing the size limit.

    Raises PayloadValidationError for what JSON or ``jsonb`` cannot hold: NaN
    and ±Infinity, circular or non-JSON values, ints too long to print, NUL
    and surrogate code points (in keys too). One C-speed pass does it all:
    the encoder refuses the first kinds; with ``ensure_ascii=False``
    surrogates stay raw, so the UTF-8 encoding the size check needs anyway
    fails on them; a NUL is always escaped, so one substring test finds it.
    """
    text, size = _encode(data)
    if size > limit:
        raise PayloadTooLargeError(f"payload is {size} bytes; the limit is {limit} (JOB_MAX_PAYLOAD_BYTES)")
    return text


def encode_payloads(values: list[Any], limit: int) -> str:
    """Payloads as one JSON array, each checked as :func:`encode_payload` checks one.

    One pass for the whole batch: a payload is never larger than the array
    holding it, so only an array over ``limit`` is encoded again payload by
    payload, to find one that is.
    """
    text, size = _encode(values)
    if size <= limit:
        return text
    return f"[{','.join([encode_payload(value, limit) for value in values])}]"


def _encode(data: Any) -> tuple[str, int]:
    """``data`` as JSON text and its size in UTF-8 bytes; PayloadValidationError for what ``jsonb`` cannot hold."""
    try:
        text = _ENCODER.encode(data)
        size = len(text.encode())
    except UnicodeEncodeError:
        raise PayloadValidationError(
            "payload contains a surrogate code point (not valid Unicode text); PostgreSQL cannot store it"
        ) from None
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise PayloadValidationError("payload contains NaN or Infinity, which JSON cannot represent") from None
        raise PayloadValidationError(f"payload cannot be encoded as JSON: {exc}") from None
    except (TypeError, RecursionError) as exc:
        raise PayloadValidationError(f"payload cannot be encoded as JSON: {exc}") from None
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise PayloadValidationError("payload contains a NUL character (\\u0000); PostgreSQL cannot store it")
    return text, size


def encode_result(value: Any) -> str:
    """A handler's result as the JSON text stored for it; PayloadValidationError for what no row can hold."""
    try:
        return encode_payload(value, MAX_RESULT_BYTES)
    except PayloadValidationError as exc:
        raise PayloadValidationError(str(exc).replace("payload", "handler result", 1)) from None


def optional_text(value: object, name: str, max_len: int = 256) -> str | None:
    """Return ``value`` if it is None or a non-empty string of bounded length that PostgreSQL can store."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationError(f"{name} must be a non-empty string of at most {max_len} characters")
    if not storable(value):
        raise ValidationError(
            f"{name} {preview(value)} contains NUL or a surrogate code point; PostgreSQL cannot store it"
        )
    return value


def page(limit: object, offset: object) -> tuple[int, int]:
    """Return ``(limit, offset)`` if both are ints (bools are not) with 1 <= limit <= 1000 and 0 <= offset < 2**63."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be an int from 1 to {MAX_PAGE}, got {preview(limit)}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValidationError(f"offset must be an int from 0 to {MAX_OFFSET}, got {preview(offset)}")
    return int(limit), int(offset)


def queue_name(queue: object) -> str:
    """``queue`` if it is a valid queue name (1-63 lower-case letters, digits, ``_``, ``-``), else ValidationError."""
    if not isinstance(queue, str) or not _QUEUE.fullmatch(queue):
        raise ValidationError(f"invalid queue name {preview(queue)}: use 1-63 lower-case letters, digits, _ and -")
    return queue
