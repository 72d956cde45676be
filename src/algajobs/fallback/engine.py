"""The PostgreSQL engine: admission is one insert; a worker claims with ``SKIP LOCKED``."""

from __future__ import annotations

from ..db import BATCH_BYTES, Database, Transaction, batch_spans, utf8_size
from ..encryption import Column, seal
from ..engine import Accepted, Admission
from ..enums import JobStatus, RunnerType
from ..limits import Limits
from ..models import EngineHealth, ScheduleResult
from ..registry import JobRegistry
from ..schedule_spec import ScheduleSpec
from ..scheduling import JobBatch, JobRequest
from ..settings import Settings
from ..store import CancelOutcome, JobStore
from ..telemetry import carrier
from .schedules import upsert_schedule
from .worker import PostgresWorker, WorkerState


class PostgresEngine:
    """Jobs as rows of the queue; the row write is the whole admission."""

    def __init__(
        self, db: Database, store: JobStore, settings: Settings, registry: JobRegistry, limits: Limits
    ) -> None:
        self._db = db
        self._limits = limits
        self._store = store
        self._settings = settings
        self._registry = registry
        self.worker: PostgresWorker | None = None

    @property
    def serving(self) -> bool:
        """True while this process's worker claims jobs (started, not stopping, no loop given up)."""
        worker = self.worker
        return worker is not None and worker.state is WorkerState.RUNNING and worker.failed is None

    @property
    def kind(self) -> RunnerType:
        """Always ``postgres``."""
        return RunnerType.POSTGRES

    async def admit(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Write the job as queued, carrying the trace context (an existing id or singleton key wins)."""
        trace_context = carrier()
        metadata = {"trace": trace_context} if trace_context else None
        result = await self._store.insert_job(
            request, status=JobStatus.QUEUED, runner_type=RunnerType.POSTGRES, metadata=metadata
        )
        return Accepted(result)

    async def enqueue(self, request: JobRequest, tx: Transaction) -> ScheduleResult:
        """Write the job as queued in the caller's transaction: workers see it at commit."""
        return await self._store.insert_job(request, status=JobStatus.QUEUED, runner_type=RunnerType.POSTGRES, tx=tx)

    async def adopt(self, request: JobRequest, *, within: float | None = None) -> Admission:
        """Queue a row Temporal could not take (an outbox row, a refused start) on PostgreSQL."""
        owner = await self._store.hand_over(request, "Temporal did not take it; queued on PostgreSQL")
        return Accepted(ScheduleResult(job_id=request.job_id, external_id=None, runner_type=owner))

    async def admit_many(self, batch: JobBatch) -> list[Admission]:
        """Queue fresh jobs of one tenant, name and user in a single statement."""
        shared = {
            "tenant": batch.tenant_id,
            "type": batch.name,
            "user_id": batch.user_id,
            "priority": batch.priority,
            "run_at": None,
            "max_attempts": batch.definition.retry.max_attempts,
            "queue": batch.definition.queue,
        }
        ids = [job_id.hex for job_id in batch.job_ids]  # 32 hex digits: PostgreSQL's uuid input takes them
        if (keys := self._db.keys) is None and utf8_size(batch.payloads_json) <= BATCH_BYTES:
            chunks = [{**shared, "job_ids": ",".join(ids), "datas": batch.payloads_json}]
        else:  # sealed one by one, or past what one JSON value holds: several statements, one transaction
            datas = batch.payload_texts
            if keys is not None:
                datas = [seal(keys, d, tenant=batch.tenant_id, column=Column.DATA) for d in datas]
            chunks = [
                {**shared, "job_ids": ",".join(ids[start:end]), "datas": f"[{','.join(datas[start:end])}]"}
                for start, end in batch_spans([utf8_size(d) for d in datas])
            ]
        if len(chunks) == 1:
            await self._db.execute("insert_jobs", chunks[0])
        else:

            async def insert_all(tx: Transaction) -> None:
                for params in chunks:
                    await tx.execute("insert_jobs", params)

            await self._db.transact(insert_all, what="insert_jobs")
        return [
            Accepted(ScheduleResult(job_id=job_id, external_id=None, runner_type=RunnerType.POSTGRES))
            for job_id in batch.job_ids
        ]

    async def register_recurring(
        self, request: JobRequest, spec: ScheduleSpec, *, within: float | None = None, tx: Transaction | None = None
    ) -> Admission:
        """Create or update the schedule (in ``tx`` when given); workers fire each tick exactly once."""
        return Accepted(await upsert_schedule(self._db, request, spec, tx=tx))

    async def cancel(
        self, cancelled: CancelOutcome, *, within: float | None = None, cancelled_by: str | None = None
    ) -> None:
        """Nothing beyond the row: its trigger notifies the worker holding the job."""

    async def health(self, *, within: float) -> EngineHealth:
        """One bounded ``SELECT 1`` through the pool."""
        return await self._db.ping(wait=within)

    async def start_worker(self) -> None:
        """Start a queue worker in this process (idempotent)."""
        if self.worker is None:
            self._limits.load()
            self.worker = PostgresWorker(self._db, self._settings, self._registry, self._store, self._limits)
            await self.worker.start()

    async def stop_worker(self) -> None:
        """Stop the worker: running jobs finish within the grace period or go back to the queue."""
        if self.worker is not None:
            worker, self.worker = self.worker, None
            await worker.stop()
