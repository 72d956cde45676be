"""What each notice on the worker channel turns into."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from algajobs import Settings
from algajobs.fallback.listener import Listener

JOB = UUID("01a22190-4a2f-7000-a5b9-d2653202d114")


@pytest.mark.parametrize(
    ("payload", "call"),
    [
        (f"job:{JOB}:acme", ("job", "acme", JOB)),
        (f"job:{JOB}:tenant:with:colons", ("job", "tenant:with:colons", JOB)),
        ("job:not-a-uuid:acme", ("due", None)),  # still work: the usual claim finds it
        ("", ("due", None)),
        ("1795859097.5", ("due", 1795859097.5)),
        ("something newer", ("due", None)),
        (f"cancel:{JOB}", ("cancel", JOB)),
        ("cancel:nonsense", None),
    ],
)
def test_each_notice_becomes_its_call(payload: str, call: tuple[Any, ...] | None) -> None:
    calls: list[tuple[Any, ...]] = []
    listener = Listener(
        Settings.load(),
        on_due=lambda epoch: calls.append(("due", epoch)),
        on_cancel=lambda job_id: calls.append(("cancel", job_id)),
        on_job=lambda tenant, job_id: calls.append(("job", tenant, job_id)),
    )
    listener._dispatch(payload)
    assert calls == ([] if call is None else [call])
