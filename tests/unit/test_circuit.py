"""The circuit breaker's transitions, on a controllable clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from algajobs.circuit import CircuitBreaker, CircuitConfig, CircuitState


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A manual clock."""
    return Clock()


@pytest.fixture
def changes() -> list[tuple[CircuitState, CircuitState]]:
    """Recorded state changes."""
    return []


@pytest.fixture
def breaker(clock: Clock, changes: list[tuple[CircuitState, CircuitState]]) -> CircuitBreaker:
    """A breaker: 3 failures open it, 10 s cool-down, 1 probe."""
    return CircuitBreaker(
        CircuitConfig(failure_threshold=3, cool_down=10.0), clock=clock, on_change=lambda a, b: changes.append((a, b))
    )


def open_circuit(breaker: CircuitBreaker) -> None:
    """Fail as often as the threshold asks."""
    for _ in range(breaker.config.failure_threshold):
        breaker.record_failure()


def test_closed_allows_and_stays_closed_below_threshold(breaker: CircuitBreaker) -> None:
    """Fewer failures than the threshold keep it closed; a success resets the count."""
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()


def test_threshold_failures_open_and_refuse(breaker: CircuitBreaker, changes: list[object]) -> None:
    """Consecutive failures at the threshold open the circuit; open refuses calls."""
    open_circuit(breaker)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    assert changes == [(CircuitState.CLOSED, CircuitState.OPEN)]


def test_cool_down_leads_to_half_open_with_one_probe(breaker: CircuitBreaker, clock: Clock) -> None:
    """After the cool-down exactly one probe is allowed."""
    open_circuit(breaker)
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()


def test_successful_probe_closes(breaker: CircuitBreaker, clock: Clock, changes: list[object]) -> None:
    """A successful half-open probe closes the circuit."""
    open_circuit(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert changes == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


def test_failed_probe_reopens_for_a_full_cool_down(breaker: CircuitBreaker, clock: Clock) -> None:
    """A failed probe opens the circuit again; the cool-down restarts."""
    open_circuit(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 5
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()


def test_released_probe_can_be_used_again(breaker: CircuitBreaker, clock: Clock) -> None:
    """A probe that never reached the engine is given back; outcomes make release a no-op."""
    open_circuit(breaker)
    clock.now += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
    breaker.record_success()
    breaker.release()
    assert breaker.state is CircuitState.CLOSED


def test_bad_config_is_rejected() -> None:
    """Nonsense thresholds fail at construction."""
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitConfig(failure_threshold=0)


def test_circuit_imports_no_io_library() -> None:
    """circuit/ stays a pure state machine: no network, database or Temporal imports."""
    banned = {"psycopg", "psycopg_pool", "temporalio", "asyncio", "socket", "httpx"}
    roots = {name.split(".")[0] for name in _imports("circuit") if not name.startswith(".")}
    assert not banned & roots, roots


def _imports(folder: str) -> set[str]:
    root = Path(__file__).resolve().parents[2] / "src" / "algajobs" / folder
    found: set[str] = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(("." * node.level) + node.module)
    return found


def test_fallback_never_imports_temporal() -> None:
    """The PostgreSQL engine works while Temporal is gone: it never imports temporalio."""
    assert not any(name.startswith("temporalio") for name in _imports("fallback"))


def test_workflows_never_import_the_fallback() -> None:
    """Workflows stay sandbox-small: no PostgreSQL engine, no database driver."""
    imports = _imports("workflows")
    assert not any("fallback" in name or name.startswith("psycopg") for name in imports), imports


def test_timeouts_soon_after_a_success_mean_busy_not_down(clock: Clock) -> None:
    """A timeout within busy_window of a success is not counted; refusals and later timeouts are."""
    breaker = CircuitBreaker(CircuitConfig(failure_threshold=2, cool_down=10.0, busy_window=1.0), clock=clock)
    breaker.record_success()
    clock.now += 0.5
    for _ in range(5):
        breaker.record_failure(timed_out=True)
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()  # a refusal always counts
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN


def test_timeouts_long_after_the_last_success_open_the_circuit(clock: Clock) -> None:
    """Once the last success is older than busy_window, timeouts count as usual."""
    breaker = CircuitBreaker(CircuitConfig(failure_threshold=2, cool_down=10.0, busy_window=1.0), clock=clock)
    breaker.record_success()
    clock.now += 1.5
    breaker.record_failure(timed_out=True)
    breaker.record_failure(timed_out=True)
    assert breaker.state is CircuitState.OPEN
