"""algajobs: background jobs on Temporal, with a PostgreSQL queue as fallback.

Everything public is importable from here::

    from algajobs import JobRegistry, JobContext, RetryPolicy, create_runner, Settings
"""

from .circuit import CircuitState
from .context import JobContext
from .encryption import EncryptedPayload
from .enums import JobStatus, RunnerType
from .errors import (
    AlgaJobsError,
    ConfigurationError,
    DatabaseError,
    EngineUnavailableError,
    InvalidJobIdError,
    InvalidRunAtError,
    InvalidScheduleError,
    InvalidTenantError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    JobTimeoutError,
    PayloadDecryptionError,
    PayloadTooLargeError,
    PayloadValidationError,
    RunnerStateError,
    UnknownJobError,
    ValidationError,
    WorkerFailedError,
)
from .factory import create_runner
from .migrations import migrate
from .models import EngineHealth, HealthReport, JobDetail, JobInfo, PausedQueue, ScheduleResult, UnservedJobType
from .protocol import JobRunner, RunnerState
from .registry import JobDefinition, JobRegistry
from .retry import RetryPolicy
from .runner import FailoverRunner, PostgresRunner, Runner, TemporalRunner
from .settings import Settings
from .sync import SyncRunner
from .wiring import RunnerMode

__all__ = [
    "AlgaJobsError",
    "CircuitState",
    "ConfigurationError",
    "DatabaseError",
    "EncryptedPayload",
    "EngineHealth",
    "EngineUnavailableError",
    "FailoverRunner",
    "HealthReport",
    "InvalidJobIdError",
    "InvalidRunAtError",
    "InvalidScheduleError",
    "InvalidTenantError",
    "JobCancelledError",
    "JobContext",
    "JobDefinition",
    "JobDetail",
    "JobFailedError",
    "JobInfo",
    "JobNotFoundError",
    "JobRegistry",
    "JobRunner",
    "JobStateError",
    "JobStatus",
    "JobTimeoutError",
    "PausedQueue",
    "PayloadDecryptionError",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "PostgresRunner",
    "RetryPolicy",
    "Runner",
    "RunnerMode",
    "RunnerState",
    "RunnerStateError",
    "RunnerType",
    "ScheduleResult",
    "Settings",
    "SyncRunner",
    "TemporalRunner",
    "UnknownJobError",
    "UnservedJobType",
    "ValidationError",
    "WorkerFailedError",
    "create_runner",
    "migrate",
]
