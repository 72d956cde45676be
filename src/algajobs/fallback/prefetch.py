"""How many jobs a worker claims beyond its free slots, so that short jobs never wait for a claim."""

from __future__ import annotations

_WEIGHT = 0.1  # of the newest sample in the moving averages


class ClaimAhead:
    """Sizes the jobs a worker claims beyond its concurrency: about as many as it finishes during one claim.

    A claim is a round trip to the server. While it is in flight, a slot whose
    handler finishes sits idle unless a claimed job is already waiting for it,
    and with short jobs the worker then spends most of its time waiting for
    claims. So the worker holds, beyond its concurrency, about as many claimed
    jobs as its slots finish during one claim (concurrency * claim time /
    handler time, from moving averages), at most one batch and at most its
    concurrency. Such a job waits for a slot about one claim round trip on
    average; handlers much longer than a claim get none claimed ahead.
    """

    def __init__(self, concurrency: int, batch: int) -> None:
        self._concurrency = concurrency
        self._most = min(concurrency, batch)
        self._claim: float | None = None
        self._run: float | None = None

    @property
    def jobs(self) -> int:
        """How many jobs to claim beyond the free slots now (0 until a claim and a handler were timed)."""
        if self._claim is None or self._run is None:
            return 0
        if self._run <= 0.0:
            return self._most
        return min(self._most, int(self._concurrency * self._claim / self._run))

    def claimed(self, seconds: float) -> None:
        """A claim took ``seconds``, from sending it to having its jobs."""
        self._claim = _averaged(self._claim, seconds)

    def ran(self, seconds: float) -> None:
        """A handler ran for ``seconds``, from getting its slot to its outcome."""
        self._run = _averaged(self._run, seconds)


def _averaged(average: float | None, sample: float) -> float:
    return sample if average is None else average + _WEIGHT * (sample - average)
