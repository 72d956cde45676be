"""How many jobs a PostgreSQL worker claims beyond its free slots."""

from algajobs.fallback.prefetch import ClaimAhead


def timed(concurrency: int, batch: int, claim: float | None, *runs: float) -> ClaimAhead:
    """A sizing that saw one claim of ``claim`` s (none if None) and slot holds of ``runs`` s."""
    ahead = ClaimAhead(concurrency=concurrency, batch=batch)
    if claim is not None:
        ahead.claimed(claim)
    for seconds in runs:
        ahead.ran(seconds)
    return ahead


def test_nothing_is_claimed_ahead_before_a_claim_and_a_handler_were_timed() -> None:
    """A new worker claims only for its free slots."""
    assert timed(100, 100, None).jobs == 0
    assert timed(100, 100, 0.005).jobs == 0
    assert timed(100, 100, None, 0.001).jobs == 0


def test_about_as_many_as_the_slots_finish_during_one_claim() -> None:
    """Concurrency x claim time / handler time, rounded down."""
    assert timed(100, 100, 0.005, 0.050).jobs == 10


def test_short_handlers_claim_at_most_one_batch_and_at_most_the_concurrency() -> None:
    """No-op handlers: a whole batch ahead, never more than the concurrency."""
    assert timed(100, 40, 0.005, 0.00001).jobs == 40
    assert timed(1, 100, 0.005, 0.0).jobs == 1


def test_handlers_longer_than_a_claim_claim_none_ahead() -> None:
    """One slot and a handler longer than a claim: no job waits behind it."""
    assert timed(1, 100, 0.005, 0.006).jobs == 0


def test_the_averages_follow_handlers_that_get_longer() -> None:
    """After short handlers, a run of long ones brings the count down to none."""
    ahead = timed(100, 100, 0.005, *[0.0001] * 20)
    assert ahead.jobs == 100
    for _ in range(100):
        ahead.ran(2.0)
    assert ahead.jobs == 0


def test_after_a_stall_it_takes_several_quick_jobs_to_claim_ahead_again() -> None:
    """One job that never ran (a near-zero sample) must not restart claiming ahead at full size."""
    ahead = timed(10, 10, 0.005, 0.0001)
    assert ahead.jobs == 10
    ahead.stalled()
    assert ahead.jobs == 0
    ahead.ran(0.0)
    assert ahead.jobs == 0
    for _ in range(10):
        ahead.ran(0.0)
    assert ahead.jobs > 0
