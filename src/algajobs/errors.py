"""The typed errors algajobs raises.

Every error derives from :class:`AlgaJobsError`, so one ``except`` catches
them all::

    AlgaJobsError
    ├── ConfigurationError          bad settings, named by environment variable
    ├── ValidationError             bad input; nothing was written
    │   ├── UnknownJobError         no handler registered under that name
    │   ├── PayloadValidationError  payload failed the handler's model
    │   ├── PayloadTooLargeError    serialized payload over the size limit
    │   ├── InvalidScheduleError    bad cron expression or interval
    │   ├── InvalidRunAtError       ``run_at`` without a timezone
    │   ├── InvalidTenantError      malformed tenant id
    │   └── InvalidJobIdError       malformed job id
    ├── JobNotFoundError            no such job for this tenant
    ├── JobStateError               the job's state forbids the operation
    ├── RunnerStateError            runner used before ``__aenter__`` or after close
    ├── EngineUnavailableError      an engine (or PostgreSQL itself) did not answer in time
    ├── DatabaseError               PostgreSQL refused a statement (not a transient fault)
    ├── WorkerFailedError           a worker's background loop kept crashing; it stopped
    ├── PayloadDecryptionError      an encrypted payload this process cannot open (key not held, or altered)
    ├── JobFailedError              wait_for_result: the job failed (its error is the message)
    ├── JobTimeoutError             wait_for_result: not finished in time (also a TimeoutError)
    └── JobCancelledError           raised inside a handler to end it as cancelled; by wait_for_result
                                    for a cancelled job
"""

from __future__ import annotations


class AlgaJobsError(Exception):
    """Base of every error raised by algajobs."""


class ConfigurationError(AlgaJobsError):
    """Settings are missing or invalid; the message names the variable."""


class ValidationError(AlgaJobsError):
    """Input was rejected before anything was written."""


class UnknownJobError(ValidationError):
    """No handler is registered under the given job name."""


class PayloadValidationError(ValidationError):
    """The payload does not satisfy the handler's payload model."""


class PayloadTooLargeError(ValidationError):
    """The serialized payload exceeds the configured size limit."""


class InvalidScheduleError(ValidationError):
    """A cron expression or interval string could not be parsed."""


class InvalidRunAtError(ValidationError):
    """``run_at`` must be a timezone-aware datetime."""


class InvalidTenantError(ValidationError):
    """The tenant id is empty, too long or has characters outside the allowed set."""


class InvalidJobIdError(ValidationError):
    """The job id is not a UUID."""


class JobNotFoundError(AlgaJobsError):
    """No job with this id exists for this tenant."""


class JobStateError(AlgaJobsError):
    """The job is in a state that does not allow the requested operation."""


class RunnerStateError(AlgaJobsError):
    """The runner is not open (use it as an async context manager)."""


class EngineUnavailableError(AlgaJobsError):
    """An engine, or PostgreSQL itself, did not answer in time; a ``schedule_*`` call that raises it wrote nothing."""


class DatabaseError(AlgaJobsError):
    """PostgreSQL refused a statement for a reason retrying cannot fix; the message names it."""


class WorkerFailedError(AlgaJobsError):
    """A worker's background loop kept crashing, so the worker stopped; the cause is chained."""


class PayloadDecryptionError(AlgaJobsError):
    """An encrypted payload could not be opened: its key is not in ``JOB_ENCRYPTION_KEYS``, or it was altered."""


class JobFailedError(AlgaJobsError):
    """The awaited job ended failed; the message is the job's error."""


class JobTimeoutError(AlgaJobsError, TimeoutError):
    """The awaited job did not finish within the timeout (it may still run)."""


class JobCancelledError(AlgaJobsError):
    """Raised by :meth:`JobContext.raise_if_cancelled`; ends the job as cancelled."""
