"""Job ids: version 7 UUIDs, unique, increasing within a process, whatever the clock does."""

from __future__ import annotations

import pickle
import threading
import time
import uuid

import pytest

from algajobs import job_ids
from algajobs.job_ids import new_job_id, new_job_ids


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_ids_are_version_7_uuids_stamped_with_the_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a fresh process: earlier tests' large batches leave the counter running ahead of the clock.
    monkeypatch.setattr(job_ids, "_last_ms", 0)
    monkeypatch.setattr(job_ids, "_next_count", 0)
    before = time.time_ns() // 1_000_000
    ids = new_job_ids(100)
    after = time.time_ns() // 1_000_000
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= _ms(i) <= after + 1 for i in ids)


def test_ids_behave_as_ordinary_uuids() -> None:
    made = new_job_id()
    parsed = uuid.UUID(str(made))
    assert parsed == made and hash(parsed) == hash(made)
    assert pickle.loads(pickle.dumps(made)) == made
    assert uuid.UUID(hex=made.hex) == made and len(made.hex) == 32


def test_ids_increase_within_a_batch_and_across_calls() -> None:
    ids = [*new_job_ids(10), new_job_id(), *new_job_ids(3)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_more_than_a_milliseconds_counter_runs_ahead_of_the_clock_in_order() -> None:
    ids = new_job_ids(10_000)  # past the 4,096 a millisecond's counter holds
    assert ids == sorted(ids) and len(set(ids)) == 10_000
    following = new_job_id()
    assert following > ids[-1]


def test_a_clock_that_goes_back_does_not_reorder_or_repeat_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_job_ids(5)
    real = time.time_ns
    monkeypatch.setattr(job_ids.time, "time_ns", lambda: real() - 60_000_000_000)  # a minute back
    later = new_job_ids(5)
    assert first + later == sorted(first + later)
    assert len(set(first + later)) == 10


def test_threads_get_distinct_ids() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(8)]

    def make(into: list[uuid.UUID]) -> None:
        for _ in range(200):
            into.extend(new_job_ids(5))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 8 * 1000
    assert all(out == sorted(out) for out in made)
