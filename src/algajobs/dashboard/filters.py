"""The job list's filters and keyset cursor, parsed from a query string.

A cursor is the last row's ``(created_at, job_id)`` as
``<microseconds since the epoch>.<uuid hex>``; the next page holds the rows
strictly older than it, so paging never uses OFFSET.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from .. import validation
from ..enums import JobStatus, RunnerType
from ..errors import ValidationError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass(frozen=True)
class Cursor:
    """The position after which the next page starts: the last row shown."""

    created_at: datetime
    job_id: UUID

    def encode(self) -> str:
        """The cursor as it appears in the ``after`` query parameter."""
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.job_id.hex}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse an ``after`` value; ValidationError if it is not one this module wrote."""
        micros, _, hex_id = text.partition(".")
        try:
            if not micros.isascii() or not micros.lstrip("-").isdigit() or len(micros) > 20:
                raise ValueError(micros)
            return cls(_EPOCH + timedelta(microseconds=int(micros)), UUID(hex=hex_id))
        except (ValueError, OverflowError):
            raise ValidationError("invalid page cursor; start again from the first page") from None


@dataclass(frozen=True)
class JobFilter:
    """Which jobs the list shows; None means no restriction."""

    tenant: str | None = None
    status: JobStatus | None = None
    type: str | None = None
    queue: str | None = None
    engine: RunnerType | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        """The named query's parameters for these filters."""
        return {
            "tenant": self.tenant,
            "status": self.status,
            "type": self.type,
            "queue": self.queue,
            "engine": self.engine,
            "since": self.since,
            "until": self.until,
        }

    def query(self) -> dict[str, str]:
        """The filters as query-string values, for links that keep them."""
        values = {
            "tenant": self.tenant,
            "status": self.status,
            "type": self.type,
            "queue": self.queue,
            "engine": self.engine,
            "since": _show_time(self.since),
            "until": _show_time(self.until),
        }
        return {key: str(value) for key, value in values.items() if value}

    def pinned(self, tenant: str | None) -> JobFilter:
        """These filters with the tenant forced to ``tenant`` (a tenant-scoped dashboard)."""
        return self if tenant is None else replace(self, tenant=tenant)


def parse_filter(args: Mapping[str, str]) -> JobFilter:
    """Read the list filters from query parameters; ValidationError on a bad value."""
    status, engine = _text(args, "status"), _text(args, "engine")
    try:
        parsed_status = JobStatus(status) if status else None
    except ValueError:
        raise ValidationError(f"unknown status {validation.preview(status)}") from None
    try:
        parsed_engine = RunnerType(engine) if engine else None
    except ValueError:
        raise ValidationError(f"unknown engine {validation.preview(engine)}") from None
    tenant, queue = _text(args, "tenant"), _text(args, "queue")
    return JobFilter(
        tenant=validation.tenant_id(tenant) if tenant else None,
        status=parsed_status,
        type=validation.optional_text(_text(args, "type"), "type"),
        queue=validation.queue_name(queue) if queue else None,
        engine=parsed_engine,
        since=_time(args, "since"),
        until=_time(args, "until"),
    )


def parse_cursor(args: Mapping[str, str]) -> Cursor | None:
    """The ``after`` cursor, if the query string has one."""
    text = _text(args, "after")
    return Cursor.decode(text) if text else None


def _text(args: Mapping[str, str], name: str) -> str | None:
    value = args.get(name, "").strip()
    return value or None


def _time(args: Mapping[str, str], name: str) -> datetime | None:
    """A UTC time from a ``datetime-local`` input (or an ISO date)."""
    text = _text(args, name)
    if text is None:
        return None
    if not text.isascii():  # strptime reads any Unicode digit as 0-9
        raise ValidationError(f"{name}: expected ASCII digits, got {validation.preview(text)}")
    for form in _FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValidationError(f"{name}: expected YYYY-MM-DDTHH:MM (UTC), got {validation.preview(text)}")


def _show_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
