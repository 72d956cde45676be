"""Supervised background loops: a loop that dies is seen at once, restarted, and given up on loudly.

Each loop is a named coroutine factory, run in a task called ``algajobs-<name>``:

- it **crashes** (raises, or ends in a ``CancelledError`` nobody asked for):
  the error is logged with its traceback and the loop restarts after a
  backoff that doubles up to a cap, and starts small again once a run has
  lasted ``healthy_after`` seconds;
- it crashes more than ``max_restarts`` times within ``window`` seconds: the
  supervisor gives up on it, records the error in ``failed`` and sets
  ``dead``, so the owner can stop and fail loudly (the other loops go on
  until the owner calls ``stop()``);
- it **returns**: it is finished and is not restarted;
- ``stop()`` cancels every loop and waits for them; an error raised while a
  loop unwinds is logged, not dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger("algajobs.supervisor")

LoopFactory = Callable[[], Awaitable[None]]
"""Makes one run of a long-running loop; called again for each restart."""


class LoopState(StrEnum):
    """Where one supervised loop stands."""

    RUNNING = "running"
    BACKING_OFF = "backing_off"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


class SupervisorState(StrEnum):
    """Lifecycle of a supervisor (giving up on a loop is told by ``dead``, not by this)."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    """How fast crashed loops restart, and when the supervisor stops trying."""

    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    healthy_after: float = 30.0
    """Seconds a run must last for the next restart to wait ``initial_backoff`` again."""
    max_restarts: int = 5
    """Crashes tolerated within ``window``; one more and the supervisor gives up."""
    window: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff <= self.max_backoff or self.max_restarts < 0 or self.window <= 0:
            raise ValueError("need 0 < initial_backoff <= max_backoff, max_restarts >= 0, window > 0")


@dataclass
class _Loop:
    name: str
    factory: LoopFactory
    state: LoopState = LoopState.RUNNING
    failures: int = 0
    crashes: deque[float] = field(default_factory=deque)


class Supervisor:
    """Runs named background loops, restarts those that crash, and gives up loudly on those that keep crashing."""

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.state = SupervisorState.RUNNING
        self.dead = asyncio.Event()
        """Set when the supervisor has given up on a loop; ``failed`` then holds the error."""
        self._clock = clock
        self._sleep = sleep
        self._loops: dict[str, _Loop] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failed: BaseException | None = None
        self._failed_loop: str | None = None

    @property
    def failed(self) -> BaseException | None:
        """The error that made the supervisor give up (the first loop's last crash), or ``None`` while all is well."""
        return self._failed

    @property
    def failed_loop(self) -> str | None:
        """The name of the first loop given up on, or ``None`` while all is well."""
        return self._failed_loop

    @property
    def failures(self) -> dict[str, int]:
        """Crashes of each loop since it was started."""
        return {name: loop.failures for name, loop in self._loops.items()}

    @property
    def states(self) -> dict[str, LoopState]:
        """The state of each loop."""
        return {name: loop.state for name, loop in self._loops.items()}

    def start(self, name: str, factory: LoopFactory) -> None:
        """Run ``factory()`` in a task named ``algajobs-<name>``, restarting it when it crashes."""
        if self.state is not SupervisorState.RUNNING:
            raise RuntimeError(f"supervisor is {self.state}, it starts no more loops")
        if name in self._loops:
            raise ValueError(f"a loop named {name!r} was already started")
        loop = _Loop(name, factory)
        self._loops[name] = loop
        self._tasks[name] = asyncio.create_task(self._supervise(loop), name=f"algajobs-{name}")

    async def wait_failed(self) -> BaseException:
        """Wait until the supervisor gives up on a loop; return that loop's last error."""
        await self.dead.wait()
        assert self._failed is not None  # set before dead is
        return self._failed

    async def stop(self) -> None:
        """Cancel every loop and wait for them; an error raised while one unwinds is logged."""
        if self.state is not SupervisorState.RUNNING:
            return
        self.state = SupervisorState.STOPPING
        for task in self._tasks.values():
            task.cancel()
        results = await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for loop, result in zip(self._loops.values(), results, strict=True):
            if loop.state in (LoopState.RUNNING, LoopState.BACKING_OFF):
                loop.state = LoopState.STOPPED
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("loop %r raised while stopping", loop.name, exc_info=result)
        self.state = SupervisorState.STOPPED

    async def _supervise(self, loop: _Loop) -> None:
        backoff = self.policy.initial_backoff
        while True:
            loop.state = LoopState.RUNNING
            started = self._clock()
            try:
                await loop.factory()
            except asyncio.CancelledError as exc:
                if self._unwinding():
                    raise
                error: BaseException = exc  # a cancellation nobody asked for: the loop died of it
            except Exception as exc:
                if self._unwinding():
                    raise  # it failed while being cancelled; stop() logs it
                error = exc
            else:
                loop.state = LoopState.FINISHED
                log.info("loop %r finished", loop.name)
                return
            if self._clock() - started >= self.policy.healthy_after:
                backoff = self.policy.initial_backoff
            if self._give_up(loop, error):
                return
            log.error("loop %r crashed; restarting in %.2fs", loop.name, backoff, exc_info=error)
            loop.state = LoopState.BACKING_OFF
            await self._sleep(backoff)
            backoff = min(backoff * 2, self.policy.max_backoff)

    def _unwinding(self) -> bool:
        """Whether the running loop is being cancelled on purpose (by stop() or by whoever owns the task)."""
        task = asyncio.current_task()
        return self.state is not SupervisorState.RUNNING or (task is not None and task.cancelling() > 0)

    def _give_up(self, loop: _Loop, error: BaseException) -> bool:
        """Count a crash; past the limit, record it as the supervisor's failure and return True."""
        now = self._clock()
        loop.failures += 1
        loop.crashes.append(now)
        while loop.crashes and now - loop.crashes[0] > self.policy.window:
            loop.crashes.popleft()
        if len(loop.crashes) <= self.policy.max_restarts:
            return False
        log.error(
            "loop %r crashed %d times within %.0fs; giving up",
            loop.name,
            len(loop.crashes),
            self.policy.window,
            exc_info=error,
        )
        loop.state = LoopState.FAILED
        if self._failed is None:  # the first loop given up on is the cause; later ones follow from it
            self._failed, self._failed_loop = error, loop.name
        self.dead.set()
        return True
