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
    average; with handlers longer than concurrency times a claim, none is
    claimed ahead. When the handlers get longer than the averages say, a job
    claimed ahead waits too long: the worker hands it back and calls
    :meth:`stalled`, and claims none ahead until a job finishes again.
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
        """A job held its slot for ``seconds`` (its handler, then writing its outcome)."""
        self._run = _averaged(self._run, seconds)

    def stalled(self) -> None:
        """A job claimed ahead waited too long for a slot: claim none ahead for now.

        The slot-hold average becomes at least what claims none ahead, twice over, so it
        takes several quick jobs in a row (about seven), not one, to claim ahead again.
        """
        if self._claim is not None:
            self._run = max(self._run or 0.0, 2 * self._concurrency * self._claim)


def _averaged(average: float | None, sample: float) -> float:
    return sample if average is None else average + _WEIGHT * (sample - average)
