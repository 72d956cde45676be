"""The supervisor: crashed loops are logged and restarted, repeat offenders end it loudly, stop() cancels all."""

from __future__ import annotations

import asyncio
import logging

import pytest

from algajobs.supervisor import LoopState, RestartPolicy, Supervisor

FAST = RestartPolicy(initial_backoff=0.001, max_backoff=0.01, max_restarts=5, window=60.0)
DEADLINE = 2.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sleeps:
    """A sleep that records each delay, moves the clock by it, and only yields."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.clock.now += delay
        await asyncio.sleep(0)


class Flaky:
    """A loop that crashes ``crashes`` times (after ``runs_for`` clock seconds each), then runs until cancelled."""

    def __init__(self, crashes: int, *, clock: Clock | None = None, runs_for: float = 0.0) -> None:
        self.crashes = crashes
        self.clock = clock
        self.runs_for = runs_for
        self.calls = 0
        self.task_names: list[str] = []
        self.running = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        task = asyncio.current_task()
        self.task_names.append(task.get_name() if task else "")
        if self.clock is not None:
            self.clock.now += self.runs_for
        if self.calls <= self.crashes:
            raise ValueError(f"crash {self.calls}")
        self.running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_crashing_loop_is_restarted_and_its_traceback_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A loop that crashes twice then runs is restarted twice, in its named task, each crash logged with traceback."""
    caplog.set_level(logging.ERROR, logger="algajobs.supervisor")
    supervisor = Supervisor(FAST)
    loop = Flaky(2)
    supervisor.start("flaky", loop)
    async with asyncio.timeout(DEADLINE):
        await loop.running.wait()
    assert supervisor.failures == {"flaky": 2}
    assert supervisor.states == {"flaky": LoopState.RUNNING}
    assert loop.task_names == ["algajobs-flaky"] * 3
    crashes = [r for r in caplog.records if r.name == "algajobs.supervisor"]
    assert [r.levelno for r in crashes] == [logging.ERROR, logging.ERROR]
    assert all(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in crashes)
    assert "Traceback" in caplog.text and "crash 1" in caplog.text and "crash 2" in caplog.text
    assert not supervisor.dead.is_set()
    await supervisor.stop()


async def test_loop_that_keeps_crashing_makes_the_supervisor_give_up(caplog: pytest.LogCaptureFixture) -> None:
    """One crash more than max_restarts within the window sets dead and exposes the last error."""
    caplog.set_level(logging.ERROR, logger="algajobs.supervisor")
    supervisor = Supervisor(RestartPolicy(initial_backoff=0.001, max_backoff=0.01, max_restarts=3, window=60.0))
    loop = Flaky(1_000)
    supervisor.start("doomed", loop)
    async with asyncio.timeout(DEADLINE):
        error = await supervisor.wait_failed()
    assert isinstance(error, ValueError) and str(error) == "crash 4"
    assert supervisor.failed is error and supervisor.failed_loop == "doomed"
    assert supervisor.failures == {"doomed": 4}
    assert supervisor.states == {"doomed": LoopState.FAILED}
    assert loop.calls == 4  # given up on, so not restarted again
    assert "giving up" in caplog.records[-1].getMessage()
    await supervisor.stop()


async def test_crashes_spread_wider_than_the_window_are_tolerated() -> None:
    """Crashes further apart than the window allows never add up to giving up."""
    clock = Clock()
    sleeps = Sleeps(clock)
    policy = RestartPolicy(max_restarts=2, window=10.0)
    supervisor = Supervisor(policy, clock=clock, sleep=sleeps)
    loop = Flaky(6, clock=clock, runs_for=6.0)
    supervisor.start("slow-crasher", loop)
    async with asyncio.timeout(DEADLINE):
        await loop.running.wait()
    assert supervisor.failures == {"slow-crasher": 6}
    assert not supervisor.dead.is_set()
    await supervisor.stop()


async def test_backoff_doubles_to_the_cap_and_resets_after_a_healthy_run() -> None:
    """Quick crashes double the wait up to max_backoff; a crash after a long, healthy run waits the minimum again."""
    clock = Clock()
    sleeps = Sleeps(clock)
    policy = RestartPolicy(initial_backoff=1.0, max_backoff=4.0, healthy_after=30.0, max_restarts=100)
    supervisor = Supervisor(policy, clock=clock, sleep=sleeps)
    durations = iter([0.0, 0.0, 0.0, 0.0, 45.0, 0.0])
    running = asyncio.Event()

    async def loop() -> None:
        duration = next(durations, None)
        if duration is None:
            running.set()
            await asyncio.Event().wait()
            return
        clock.now += duration
        raise OSError("lost")

    supervisor.start("backoff", loop)
    async with asyncio.timeout(DEADLINE):
        await running.wait()
    assert sleeps.delays == [1.0, 2.0, 4.0, 4.0, 1.0, 2.0]
    await supervisor.stop()


async def test_stop_cancels_every_loop() -> None:
    """stop() cancels each running loop, waits for it, and marks it stopped."""
    supervisor = Supervisor(FAST)
    loops = {name: Flaky(0) for name in ("listen", "flush", "heartbeat")}
    for name, loop in loops.items():
        supervisor.start(name, loop)
    async with asyncio.timeout(DEADLINE):
        for loop in loops.values():
            await loop.running.wait()
        await supervisor.stop()
    assert all(loop.cancelled.is_set() for loop in loops.values())
    assert set(supervisor.states.values()) == {LoopState.STOPPED}
    assert supervisor.failures == dict.fromkeys(loops, 0)
    with pytest.raises(RuntimeError):
        supervisor.start("late", Flaky(0))


async def test_loop_that_returns_is_not_restarted() -> None:
    """A loop that returns normally is finished, not crashed, and runs once."""
    supervisor = Supervisor(FAST)
    calls: list[int] = []
    returned = asyncio.Event()

    async def once() -> None:
        calls.append(1)
        returned.set()

    supervisor.start("once", once)
    async with asyncio.timeout(DEADLINE):
        await returned.wait()
    assert supervisor.states == {"once": LoopState.FINISHED}
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "algajobs-once"]  # its task ended: no restart
    assert calls == [1]
    assert supervisor.failures == {"once": 0}
    await supervisor.stop()
    assert supervisor.states == {"once": LoopState.FINISHED}


async def test_error_raised_while_stopping_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A loop whose cleanup fails on cancellation is not restarted; stop() logs the error with its traceback."""
    caplog.set_level(logging.ERROR, logger="algajobs.supervisor")
    supervisor = Supervisor(FAST)
    running = asyncio.Event()

    async def messy() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("cleanup failed")

    supervisor.start("messy", messy)
    async with asyncio.timeout(DEADLINE):
        await running.wait()
        await supervisor.stop()
    [record] = [r for r in caplog.records if r.name == "algajobs.supervisor"]
    assert "while stopping" in record.getMessage()
    assert record.exc_info and isinstance(record.exc_info[1], RuntimeError)
    assert supervisor.failures == {"messy": 0}


async def test_stray_cancellation_counts_as_a_crash() -> None:
    """A CancelledError the supervisor did not ask for (an inner task cancelled) is a crash, and restarted."""
    supervisor = Supervisor(FAST)
    loop = Flaky(0)
    calls = 0

    async def cancelled_inside() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            inner = asyncio.create_task(asyncio.Event().wait())
            inner.cancel()
            await inner
        await loop()

    supervisor.start("stray", cancelled_inside)
    async with asyncio.timeout(DEADLINE):
        await loop.running.wait()
    assert supervisor.failures == {"stray": 1}
    await supervisor.stop()


async def test_duplicate_names_are_refused() -> None:
    """Two loops cannot share a name (their tasks and counts would be confused)."""
    supervisor = Supervisor(FAST)
    supervisor.start("one", Flaky(0))
    with pytest.raises(ValueError, match="one"):
        supervisor.start("one", Flaky(0))
    await supervisor.stop()


def test_policy_rejects_nonsense() -> None:
    """A zero backoff or a cap below the initial backoff is refused."""
    with pytest.raises(ValueError, match="backoff"):
        RestartPolicy(initial_backoff=0)
    with pytest.raises(ValueError, match="backoff"):
        RestartPolicy(initial_backoff=2, max_backoff=1)
