"""Configuration read from the environment (pydantic-settings).

Every field can be set by keyword in code or by the environment variable
named in its alias; a bad value fails at start-up with
:class:`ConfigurationError` naming the variable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import pydantic
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from . import validation
from .encryption import KeySet, parse_keys
from .enums import RunnerType
from .errors import AlgaJobsError, ConfigurationError

_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)
# 49 characters at most: notification channels are 'algajobs_done_' + the schema, and
# PostgreSQL truncates nothing there; a longer channel name makes every completion fail.
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,48}$")


def _env(*names: str) -> Any:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every knob of algajobs; environment variable names in parentheses."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    runner_type: RunnerType = Field(
        default=RunnerType.TEMPORAL, validation_alias=_env("runner_type", "JOB_RUNNER_TYPE")
    )
    """Engine (``JOB_RUNNER_TYPE``): ``temporal`` (default, with fallback) or ``postgres``/``pgboss``."""
    fallback_to_postgres: bool = Field(
        default=True,
        validation_alias=_env(
            "fallback_to_postgres", "JOB_RUNNER_FALLBACK_TO_PGBOSS", "JOB_RUNNER_FALLBACK_TO_POSTGRES"
        ),
    )
    """Route to PostgreSQL while Temporal is unreachable (``JOB_RUNNER_FALLBACK_TO_PGBOSS``)."""
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=_env("database_url", "DATABASE_URL"),
    )
    """PostgreSQL connection string (``DATABASE_URL``)."""
    schema_name: str = Field(default="algajobs", validation_alias=_env("schema_name", "JOB_SCHEMA"))
    """Schema holding every algajobs table (``JOB_SCHEMA``)."""
    temporal_address: str = Field(
        default="localhost:7233", validation_alias=_env("temporal_address", "TEMPORAL_ADDRESS")
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=_env("temporal_namespace", "TEMPORAL_NAMESPACE")
    )
    temporal_task_queue: str = Field(
        default="alga-jobs", validation_alias=_env("temporal_task_queue", "TEMPORAL_JOB_TASK_QUEUE")
    )
    temporal_tls: bool = Field(default=False, validation_alias=_env("temporal_tls", "TEMPORAL_TLS"))
    """Connect with TLS and the system's CAs (``TEMPORAL_TLS``); implied by ``TEMPORAL_TLS_*`` or an API key."""
    temporal_tls_ca: str | None = Field(default=None, validation_alias=_env("temporal_tls_ca", "TEMPORAL_TLS_CA"))
    """CA certificate the server's is checked against: a file path or the PEM itself (``TEMPORAL_TLS_CA``)."""
    temporal_tls_cert: str | None = Field(default=None, validation_alias=_env("temporal_tls_cert", "TEMPORAL_TLS_CERT"))
    """Client certificate for mutual TLS: a path or PEM (``TEMPORAL_TLS_CERT``; needs ``TEMPORAL_TLS_KEY``)."""
    temporal_tls_key: pydantic.SecretStr | None = Field(
        default=None, validation_alias=_env("temporal_tls_key", "TEMPORAL_TLS_KEY")
    )
    """Client private key for mutual TLS: a path or PEM (``TEMPORAL_TLS_KEY``)."""
    temporal_tls_server_name: str | None = Field(
        default=None, validation_alias=_env("temporal_tls_server_name", "TEMPORAL_TLS_SERVER_NAME")
    )
    """Server name to verify and send as SNI, when it differs from the address (``TEMPORAL_TLS_SERVER_NAME``)."""
    temporal_api_key: pydantic.SecretStr | None = Field(
        default=None, validation_alias=_env("temporal_api_key", "TEMPORAL_API_KEY")
    )
    """API key sent as a bearer token, e.g. for Temporal Cloud (``TEMPORAL_API_KEY``)."""
    temporal_search_attributes: bool = Field(
        default=False, validation_alias=_env("temporal_search_attributes", "TEMPORAL_SEARCH_ATTRIBUTES")
    )
    """Set the Keyword search attributes ``AlgaTenant``, ``AlgaJobName``, ``AlgaJobId`` and ``AlgaQueue``
    on every job workflow (``TEMPORAL_SEARCH_ATTRIBUTES``). Off by default: the namespace refuses starts
    until they are registered, and ``algajobs dev`` registers them and turns this on."""
    encryption_keys: pydantic.SecretStr | None = Field(
        default=None, validation_alias=_env("encryption_keys", "JOB_ENCRYPTION_KEYS")
    )
    """Payload encryption (``JOB_ENCRYPTION_KEYS``): comma-separated ``key-id:base64-key`` of 32-byte
    AES-256-GCM keys; the first encrypts, every one decrypts (rotation). Job data and results are then
    encrypted in Temporal history and in the ``jobs`` rows. Unset (default): stored as plain JSON."""
    worker_concurrency: int = Field(
        default=20, ge=1, le=10_000, validation_alias=_env("worker_concurrency", "JOB_WORKER_CONCURRENCY")
    )
    """Handlers one worker runs at once (``JOB_WORKER_CONCURRENCY``)."""
    fetch_batch_size: int = Field(
        default=50, ge=1, le=1_000, validation_alias=_env("fetch_batch_size", "JOB_FETCH_BATCH_SIZE")
    )
    """Most jobs claimed per fetch query, and most claimed ahead of free slots (``JOB_FETCH_BATCH_SIZE``)."""
    queues: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None, validation_alias=_env("queues", "JOB_QUEUES")
    )
    """Queues a worker serves, comma-separated (``JOB_QUEUES``); unset: every queue it has handlers for."""
    tenant_concurrency: int | None = Field(
        default=None, ge=1, le=10_000, validation_alias=_env("tenant_concurrency", "JOB_TENANT_CONCURRENCY")
    )
    """Most jobs of one tenant a worker runs at once (``JOB_TENANT_CONCURRENCY``); unset: no cap.
    Claims share work between tenants either way."""
    poll_interval: timedelta = Field(
        default=timedelta(seconds=2), validation_alias=_env("poll_interval", "JOB_POLL_INTERVAL")
    )
    """Safety-net poll when no notification arrives (``JOB_POLL_INTERVAL``, seconds)."""
    lease_duration: timedelta = Field(
        default=timedelta(seconds=30), validation_alias=_env("lease_duration", "JOB_LEASE_SECONDS")
    )
    """How long a claimed job stays claimed without a heartbeat (``JOB_LEASE_SECONDS``)."""
    shutdown_grace: timedelta = Field(
        default=timedelta(seconds=30), validation_alias=_env("shutdown_grace", "JOB_SHUTDOWN_GRACE")
    )
    """Time in-flight jobs get to finish on stop before being handed back (``JOB_SHUTDOWN_GRACE``)."""
    retention: timedelta = Field(default=timedelta(days=7), validation_alias=_env("retention", "JOB_RETENTION"))
    """Finished jobs older than this are pruned (``JOB_RETENTION``, seconds)."""
    max_payload_bytes: int = Field(
        default=256 * 1024, ge=1, validation_alias=_env("max_payload_bytes", "JOB_MAX_PAYLOAD_BYTES")
    )
    """Largest serialized payload accepted (``JOB_MAX_PAYLOAD_BYTES``)."""
    circuit_failure_threshold: int = Field(
        default=3, ge=1, validation_alias=_env("circuit_failure_threshold", "JOB_CIRCUIT_FAILURE_THRESHOLD")
    )
    """Consecutive Temporal failures that open the circuit (``JOB_CIRCUIT_FAILURE_THRESHOLD``)."""
    circuit_call_timeout: timedelta = Field(
        default=timedelta(seconds=1), validation_alias=_env("circuit_call_timeout", "JOB_CIRCUIT_CALL_TIMEOUT")
    )
    """Longest a schedule call waits on Temporal before falling back (``JOB_CIRCUIT_CALL_TIMEOUT``, s)."""
    circuit_cool_down: timedelta = Field(
        default=timedelta(seconds=5), validation_alias=_env("circuit_cool_down", "JOB_CIRCUIT_COOL_DOWN")
    )
    """Time the circuit stays open before a probe call (``JOB_CIRCUIT_COOL_DOWN``, seconds)."""
    pool_size: int = Field(default=10, ge=2, le=200, validation_alias=_env("pool_size", "JOB_DB_POOL_SIZE"))
    """Connections per process (``JOB_DB_POOL_SIZE``)."""
    temporal_start_concurrency: int = Field(
        default=100,
        ge=1,
        le=10_000,
        validation_alias=_env("temporal_start_concurrency", "JOB_TEMPORAL_START_CONCURRENCY"),
    )
    """Workflow starts in flight per process (``JOB_TEMPORAL_START_CONCURRENCY``); more wait their
    turn within the call bound, so a burst queues here instead of timing out at the cluster."""
    db_retry_deadline: timedelta = Field(
        default=timedelta(seconds=5), validation_alias=_env("db_retry_deadline", "JOB_DB_RETRY_SECONDS")
    )
    """How long a database call retries transient errors before raising ``EngineUnavailableError``
    (``JOB_DB_RETRY_SECONDS``): long enough to ride out a server restart."""
    temporal_row_wait: timedelta = Field(
        default=timedelta(seconds=40),
        le=timedelta(seconds=50),
        validation_alias=_env("temporal_row_wait", "JOB_TEMPORAL_ROW_WAIT"),
    )
    """How long a workflow's claim waits for a row its scheduler is still writing
    (``JOB_TEMPORAL_ROW_WAIT``, seconds, at most 50: the claim activity's timeout is 60)."""

    @field_validator("runner_type", mode="before")
    @classmethod
    def _pgboss_alias(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "pgboss":
            return RunnerType.POSTGRES
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "poll_interval",
        "lease_duration",
        "shutdown_grace",
        "retention",
        "circuit_call_timeout",
        "circuit_cool_down",
        "db_retry_deadline",
        "temporal_row_wait",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # Environment variables give these in seconds ("0.5", "30").
        if isinstance(value, str):
            try:
                # ASCII decimals only: float() would also take 'nan', 'inf' and non-ASCII digits.
                if not _SECONDS.fullmatch(value.strip()):
                    return value
                return timedelta(seconds=float(value))
            except ValueError:
                return value
        return value

    @field_validator(
        "poll_interval", "lease_duration", "circuit_call_timeout", "db_retry_deadline", "temporal_row_wait"
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be positive")
        return value

    def key_set(self) -> KeySet | None:
        """The keys ``JOB_ENCRYPTION_KEYS`` configures, or None when encryption is off."""
        return KeySet.configured(None if self.encryption_keys is None else self.encryption_keys.get_secret_value())

    @pydantic.model_validator(mode="after")
    def _mutual_tls_needs_both(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            missing = "TEMPORAL_TLS_KEY" if self.temporal_tls_key is None else "TEMPORAL_TLS_CERT"
            raise ValueError(f"mutual TLS needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY; {missing} is not set")
        return self

    @field_validator("queues", mode="before")
    @classmethod
    def _queue_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if value is None:
            return None
        names = tuple(value)
        if not names:
            raise ValueError("name at least one queue, or leave it unset")
        try:
            return tuple(validation.queue_name(name) for name in names)
        except AlgaJobsError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("encryption_keys")
    @classmethod
    def _keys_parse(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is not None:
            parse_keys(value.get_secret_value())  # the message never holds key material
        return value

    @field_validator("schema_name")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _SCHEMA.fullmatch(value):
            raise ValueError("must be a lower-case SQL identifier of at most 49 characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")) and "=" not in value:
            raise ValueError("must be a postgresql:// URL or a libpq key=value string")
        return value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the environment (plus ``overrides``), naming the variable on error."""
        try:
            return cls(**overrides)
        except pydantic.ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None


def _variable(name: str, alias: object) -> str:
    if isinstance(alias, AliasChoices):
        return str(alias.choices[1])
    return name


# Errors name a field by whichever alias supplied it; map every alias to the
# primary environment variable so messages are consistent.
_VARIABLES = {
    str(choice): _variable(name, field.validation_alias)
    for name, field in Settings.model_fields.items()
    for choice in (field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else [name])
}


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a check across fields: its message names the variables; inputs may be secrets
            parts.append(message)
            continue
        variable = _VARIABLES.get(str(error["loc"][0]), str(error["loc"][0]))
        shown = "***" if variable in _SECRETS else repr(error.get("input"))
        parts.append(f"{variable}: {message} (got {shown})")
    return "invalid configuration: " + "; ".join(parts)


_SECRETS = frozenset({"TEMPORAL_TLS_KEY", "TEMPORAL_API_KEY", "JOB_ENCRYPTION_KEYS"})
