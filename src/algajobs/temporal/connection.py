"""Connecting to Temporal with the project's data converter, and building the worker."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from temporalio.client import Client, OutboundInterceptor, StartWorkflowInput, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.converter import DataConverter
from temporalio.service import RetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ..activities import JobActivities
from ..errors import ConfigurationError, EngineUnavailableError
from ..settings import Settings
from ..workflows import GenericJobWorkflow
from .codec import EncryptionCodec, PayloadConverter, plain_data_converter
from .security import api_key, is_configuration_failure, tls_config


class TracingWhenTraced(TracingInterceptor):
    """Temporal's tracing interceptor, skipped on ``start_workflow`` when no trace is active.

    With no tracer configured there is no context to carry, and the span and
    header cost ~0.15 ms per start, on the scheduling hot path.
    """

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """Route starts around the tracing interceptor unless a span is current."""
        return _StartTracedOnlyInTrace(super().intercept_client(next), next)


class _StartTracedOnlyInTrace(OutboundInterceptor):
    def __init__(self, traced: OutboundInterceptor, plain: OutboundInterceptor) -> None:
        super().__init__(traced)
        self._plain = plain

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        if trace.get_current_span().get_span_context().is_valid:
            return await super().start_workflow(input)
        return await self._plain.start_workflow(input)


# Deterministic-safe modules imported once by the worker instead of per workflow run.
_PASSTHROUGH = ("pydantic", "pydantic_core", "annotated_types", "typing_extensions", "opentelemetry", "algajobs")


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """Connect to ``TEMPORAL_ADDRESS``; raise EngineUnavailableError if it does not answer.

    ``lazy`` returns at once and dials on first use, so a process can start
    while the cluster is down. Lazy clients are the failover runner's: they
    retry an unavailable cluster only briefly, since the circuit breaker (not
    the client) decides when to stop trying and fall back.
    """
    retry = RetryConfig(initial_interval_millis=50, max_retries=1) if lazy else RetryConfig()
    tls = tls_config(settings)  # read and checked now: a bad certificate setting fails at start-up
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
            interceptors=[TracingWhenTraced()],
            lazy=lazy,
            retry_config=retry,
            tls=tls,
            api_key=api_key(settings),
        )
    except RuntimeError as exc:
        if is_configuration_failure(exc):
            raise ConfigurationError(
                f"Temporal at TEMPORAL_ADDRESS={settings.temporal_address} refused the connection's TLS or "
                f"credentials (TEMPORAL_TLS_*, TEMPORAL_API_KEY): {exc}"
            ) from exc
        raise EngineUnavailableError(
            f"Temporal unreachable at TEMPORAL_ADDRESS={settings.temporal_address}: {exc}"
        ) from exc


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker and replayer uses (heavy safe modules passed through)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*_PASSTHROUGH))


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic JSON payloads, encrypted by :class:`EncryptionCodec` when ``JOB_ENCRYPTION_KEYS`` is set."""
    keys = settings.key_set()
    if keys is None:
        return plain_data_converter
    return dataclasses.replace(plain_data_converter, payload_codec=EncryptionCodec(keys))


def _converts_as(converter: DataConverter, settings: Settings) -> bool:
    codec = converter.payload_codec
    keys = settings.key_set()  # one object per key text: identity is equality
    if keys is None:
        return converter is plain_data_converter
    return (
        converter.payload_converter_class is PayloadConverter
        and isinstance(codec, EncryptionCodec)
        and codec.keys is keys
    )


def with_converter(client: Client, settings: Settings) -> Client:
    """The same connection, with the data converter algajobs payloads need (:func:`data_converter`)."""
    config = client.config()
    interceptors = list(config["interceptors"])
    traced = any(isinstance(i, TracingInterceptor) for i in interceptors)
    if traced and _converts_as(client.data_converter, settings):
        return client
    config["data_converter"] = data_converter(settings)
    config["interceptors"] = interceptors if traced else [*interceptors, TracingWhenTraced()]
    return Client(**config)


def build_worker(
    client: Client,
    settings: Settings,
    activities: JobActivities,
    *,
    task_queue: str,
    concurrency: int,
    workflows: bool = True,
) -> Worker:
    """A worker for ``genericJobWorkflow`` and its activities on one queue's task queue.

    ``workflows=False``: only the handler activity, on a capped job type's own task queue.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[GenericJobWorkflow] if workflows else [],
        activities=activities.all if workflows else [activities.execute_job_handler],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=concurrency,
        graceful_shutdown_timeout=settings.shutdown_grace,
        # Cancels reach a running handler on a heartbeat response: send them often.
        max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
    )
