"""New job ids: time-ordered UUIDs (version 7, RFC 9562), so the jobs table's indexes grow at one edge.

A random (version 4) id puts every new row's primary-key entry on a random leaf
page; so does every claim and completion, which insert new index entries for
the row (they change indexed columns, so they are not HOT updates). A claim of
100 jobs then dirtied ~100 leaf pages of the key alone, and a backlog larger
than shared buffers read them back from disk. With time-ordered ids the jobs
scheduled together sit together in the key, whatever their number.

Layout (RFC 9562 §5.7, counter per §6.2 method 1): 48 bits of Unix time in
milliseconds, the version, a 12-bit counter that orders the ids one process
makes within a millisecond, the variant, and 62 random bits, which keep ids
from different processes apart and unguessable.
"""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID, SafeUUID

_COUNTER_BITS = 12
_COUNTER_SPAN = 1 << _COUNTER_BITS
_VERSION_7 = 0x7 << _COUNTER_BITS
_VARIANT = 0b10 << 62
_RANDOM_MASK = (1 << 62) - 1

_lock = threading.Lock()  # ids are made from any thread (the sync API runs its own loop)
_last_ms = 0
_next_count = 0


def _after_fork() -> None:
    # A fork while another thread held the lock would leave the child's copy held for good.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def new_job_id() -> UUID:
    """One new job id."""
    return new_job_ids(1)[0]


def new_job_ids(count: int) -> list[UUID]:
    """``count`` new job ids, in increasing order, each greater than the ids this process made before.

    One read of the system's randomness for them all. Past 4,096 ids in one
    millisecond, the ids run ahead of the clock (RFC 9562 §6.2), never back.
    """
    global _last_ms, _next_count
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _next_count = now, 0
        first = (_last_ms << _COUNTER_BITS) + _next_count  # the clock went back: keep counting from the last id
        end = first + count
        _last_ms, _next_count = divmod(end, _COUNTER_SPAN)
    raw = os.urandom(8 * count)
    ids = []
    for n, stamp in enumerate(range(first, end)):
        ms, counter = divmod(stamp, _COUNTER_SPAN)
        low = int.from_bytes(raw[8 * n : 8 * n + 8]) & _RANDOM_MASK
        ids.append(_uuid((ms << 80) | (_VERSION_7 | counter) << 64 | _VARIANT | low))
    return ids


def _uuid(value: int) -> UUID:
    # UUID(int=...) re-checks the range and version on each call (~1 µs); the value is well formed by construction.
    made = object.__new__(UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made
