"""The engine seam: what the runner asks of Temporal and of the PostgreSQL queue alike.

Like an HTTP client's transport, an :class:`Engine` is small: accept a
validated job, register a recurring one, stop a cancelled one, report its
health, run a worker. Admission answers with a value, never a callback::

    Accepted(result)    the engine has the job (or an existing job won: result.created is False)
    Refused(reason)     the engine certainly did not start it (``busy``: up, but no capacity now)
    Ambiguous(reason)   the engine may have started it (an answer was lost)

The routing policy (``routing.py``) decides what a refusal means: hand the
row to the other engine, or withdraw it and raise. The job row is the commit
point either way: a run that finds the row taken or gone does not run the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .db import Transaction
from .enums import RunnerType
from .models import EngineHealth, ScheduleResult
from .schedule_spec import ScheduleSpec
from .scheduling import JobBatch, JobRequest
from .store import CancelOutcome


@dataclass(frozen=True)
class Accepted:
    """The engine holds the job; ``result`` is what ``schedule_*`` returns."""

    result: ScheduleResult


@dataclass(frozen=True)
class Refused:
    """The engine answered no: nothing started. Any row written for the job may be handed on."""

    reason: str
    busy: bool = False
    """The engine is up but had no capacity for this call within its bound (not a sign of an outage)."""
    misconfigured: bool = False
    """The engine refused our configuration (TLS, credentials, search attributes): reported loudly."""


@dataclass(frozen=True)
class Ambiguous:
    """The engine did not answer in time: it may have started the job; the row decides."""

    reason: str


Admission = Accepted | Refused | Ambiguous


class Engine(Protocol):
    """One job engine behind the runner; both engines implement exactly this."""

    @property
    def serving(self) -> bool:
        """True while this process's worker of the engine is taking work (what presence announces)."""
        ...

    @property
    def kind(self) -> RunnerType:
        """Which engine this is (recorded as ``runner_type`` on its rows)."""

    async def admit(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Write the job's row and hand the job to the engine, answering within ``within`` s.

        Raises EngineUnavailableError only when the row itself could not be
        written (PostgreSQL down): then no engine can take the job.
        """

    async def enqueue(self, request: JobRequest, tx: Transaction) -> ScheduleResult:
        """Write the job's row in the caller's transaction; the engine takes it only after commit."""

    async def adopt(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Take a job whose row already exists: an outbox row after commit, or a row another engine let go."""

    async def admit_many(self, batch: JobBatch) -> list[Admission]:
        """Admit a batch of fresh jobs of one tenant and name; one admission per job, in order."""

    async def register_recurring(
        self, request: JobRequest, spec: ScheduleSpec, *, within: float | None = None, tx: Transaction | None = None
    ) -> Admission:
        """Create or update the recurring job of (tenant, name, singleton key); in ``tx`` where the engine can."""

    async def cancel(
        self, cancelled: CancelOutcome, *, within: float | None = None, cancelled_by: str | None = None
    ) -> None:
        """Stop a job whose row was just cancelled, inside the engine (best effort, logged)."""

    async def health(self, *, within: float) -> EngineHealth:
        """Ping the engine, bounded by ``within`` seconds."""

    async def start_worker(self) -> None:
        """Begin running this engine's jobs in this process (idempotent)."""

    async def stop_worker(self) -> None:
        """Stop gracefully: running jobs finish within the grace period or go back to the engine."""
