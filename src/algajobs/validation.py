"""Checks on caller input, run before anything is written."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from .errors import (
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidTenantError,
    PayloadTooLargeError,
    ValidationError,
)

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def tenant_id(value: object) -> str:
    """Return ``value`` as a tenant id (a UUID or 1..128 safe characters)."""
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str) or not _TENANT.match(value):
        raise InvalidTenantError(f"malformed tenant_id {value!r}")
    return value


def job_id(value: object) -> UUID:
    """Return ``value`` as a job id UUID, or raise InvalidJobIdError."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidJobIdError(f"malformed job_id {value!r}")


def run_at(value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise InvalidRunAtError(f"run_at must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidRunAtError("run_at must be timezone-aware (e.g. datetime.now(UTC))")
    return value


def encode_payload(data: Any, limit: int) -> str:
    """Serialize validated payload values to JSON, enforcing the size limit."""
    text = json.dumps(data, separators=(",", ":"))
    size = len(text.encode())
    if size > limit:
        raise PayloadTooLargeError(f"payload is {size} bytes; the limit is {limit} (JOB_MAX_PAYLOAD_BYTES)")
    return text


def optional_text(value: object, name: str, max_len: int = 256) -> str | None:
    """Return ``value`` if it is None or a non-empty string of bounded length."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationError(f"{name} must be a non-empty string of at most {max_len} characters")
    return value
