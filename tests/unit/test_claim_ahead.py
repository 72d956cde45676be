"""How many jobs a PostgreSQL worker claims beyond its free slots."""

from algajobs.fallback.prefetch import ClaimAhead


def test_nothing_is_claimed_ahead_before_a_claim_and_a_handler_were_timed() -> None:
    """A new worker claims only for its free slots."""
    ahead = ClaimAhead(concurrency=100, batch=100)
    assert ahead.jobs == 0
    ahead.claimed(0.005)
    assert ahead.jobs == 0
    fresh = ClaimAhead(concurrency=100, batch=100)
    fresh.ran(0.001)
    assert fresh.jobs == 0


def test_about_as_many_as_the_slots_finish_during_one_claim() -> None:
    """Concurrency x claim time / handler time, rounded down."""
    ahead = ClaimAhead(concurrency=100, batch=100)
    ahead.claimed(0.005)
    ahead.ran(0.050)
    assert ahead.jobs == 10


def test_short_handlers_claim_at_most_one_batch_and_at_most_the_concurrency() -> None:
    """No-op handlers: a whole batch ahead, never more than the concurrency."""
    ahead = ClaimAhead(concurrency=100, batch=40)
    ahead.claimed(0.005)
    ahead.ran(0.00001)
    assert ahead.jobs == 40
    serial = ClaimAhead(concurrency=1, batch=100)
    serial.claimed(0.005)
    serial.ran(0.0)
    assert serial.jobs == 1


def test_handlers_longer_than_a_claim_claim_none_ahead() -> None:
    """One slot and a handler longer than a claim: no job waits behind it."""
    ahead = ClaimAhead(concurrency=1, batch=100)
    ahead.claimed(0.005)
    ahead.ran(0.006)
    assert ahead.jobs == 0


def test_the_averages_follow_handlers_that_get_longer() -> None:
    """After short handlers, a run of long ones brings the count down to none."""
    ahead = ClaimAhead(concurrency=100, batch=100)
    ahead.claimed(0.005)
    for _ in range(20):
        ahead.ran(0.0001)
    assert ahead.jobs == 100
    for _ in range(100):
        ahead.ran(2.0)
    assert ahead.jobs == 0


def test_after_a_stall_it_takes_several_quick_jobs_to_claim_ahead_again() -> None:
    """One job that never ran (a near-zero sample) must not restart claiming ahead at full size."""
    ahead = ClaimAhead(concurrency=10, batch=10)
    ahead.claimed(0.005)
    ahead.ran(0.0001)
    assert ahead.jobs == 10
    ahead.stalled()
    assert ahead.jobs == 0
    ahead.ran(0.0)
    assert ahead.jobs == 0
    for _ in range(10):
        ahead.ran(0.0)
    assert ahead.jobs > 0
