"""How values look on the page: JSON, redacted secrets, the throughput chart, Temporal links."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from ..enums import RunnerType
from .reads import Minute

# Keys whose values never reach the page, however deep in a payload they are.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key", re.I)
REDACTED = "***redacted***"


def redact(value: Any) -> Any:
    """``value`` with the values of secret-looking keys replaced by a marker."""
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def pretty_json(value: Any) -> str:
    """Indented JSON for a ``<pre>`` block (secrets redacted)."""
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str)


def utc(value: datetime) -> str:
    """``value`` as ``YYYY-MM-DD HH:MM:SS`` in UTC, whatever the database session's time zone."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def temporal_workflow_url(base: str, namespace: str, job: Any) -> str | None:
    """The Temporal Web UI page of a Temporal job's workflow, or None for other jobs."""
    if job.runner_type is not RunnerType.TEMPORAL or not job.external_id:
        return None
    url = f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{quote(job.external_id, safe='')}"
    if job.external_run_id:
        url += f"/{quote(job.external_run_id, safe='')}"
    return url + "/history"


def temporal_schedule_url(base: str, namespace: str, schedule_id: str | None) -> str | None:
    """The Temporal Web UI page of a Temporal Schedule."""
    if not schedule_id:
        return None
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/schedules/{quote(schedule_id, safe='')}"


@dataclass(frozen=True)
class Bar:
    """One minute of the throughput chart, in SVG units."""

    x: int
    completed_height: float
    failed_height: float
    label: str


CHART_HEIGHT = 60
_BAR_WIDTH = 8


def throughput_bars(minutes: list[Minute], *, now: datetime | None = None) -> tuple[list[Bar], int, int, int]:
    """Sixty bars, one per minute of the last hour, plus (peak per minute, completed, failed) totals."""
    end = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    by_minute = {m.minute.astimezone(UTC).replace(second=0, microsecond=0): m for m in minutes}
    peak = max((m.completed + m.failed for m in minutes), default=0)
    scale = CHART_HEIGHT / peak if peak else 0.0
    bars = []
    for i in range(60):
        minute = end - timedelta(minutes=59 - i)
        seen = by_minute.get(minute)
        done, failed = (seen.completed, seen.failed) if seen else (0, 0)
        label = f"{minute:%H:%M} UTC: {done} completed, {failed} failed"
        bars.append(Bar(x=i * _BAR_WIDTH, completed_height=done * scale, failed_height=failed * scale, label=label))
    return bars, peak, sum(m.completed for m in minutes), sum(m.failed for m in minutes)
