"""TLS, mutual TLS and API keys, set as environment variables, against a real dev server behind a TLS proxy."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from algajobs import (
    AlgaJobsError,
    ConfigurationError,
    EngineUnavailableError,
    FailoverRunner,
    JobContext,
    JobRegistry,
    JobStatus,
    Runner,
    RunnerType,
    Settings,
    TemporalRunner,
    create_runner,
)
from algajobs.models import HealthReport, JobInfo, ScheduleResult
from algajobs.testing import temporal_cli_path
from tests.faults.temporal_tools import free_port
from tests.helpers import eventually
from tests.integration.tls_proxy import Pki, RefusingGrpcServer, TlsProxy, make_pki

VARIABLES = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CA",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_SERVER_NAME",
    "TEMPORAL_API_KEY",
)
START = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"
POLL = "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue"
API_KEY = "ak-test-" + uuid.uuid4().hex


@pytest.fixture
async def dev_server() -> AsyncIterator[str]:
    """A throwaway plaintext Temporal dev server on loopback; yields its host:port."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli_path(), ui=False, ip="127.0.0.1"
    )
    async with environment:
        yield environment.client.service_client.config.target_host


@pytest.fixture
def pki() -> Pki:
    """A fresh test CA with server and client certificates, and an unrelated CA."""
    return make_pki()


@pytest.fixture
def echo_registry(registry: JobRegistry) -> JobRegistry:
    """A registry with one handler, ``echo``, that returns its payload."""

    @registry.handler("echo")
    async def echo(ctx: JobContext, data: Any) -> Any:
        return data

    return registry


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> EnvSettings:
    """Builds settings from environment variables, as ``algajobs worker`` reads them."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return EnvSettings(monkeypatch, settings)


class EnvSettings:
    """Sets TEMPORAL_* variables and loads Settings on the test's database schema."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, base: Settings) -> None:
        self._monkeypatch = monkeypatch
        self._base = base

    def load(self, address: str, *, fallback: bool, **variables: str) -> Settings:
        """Settings for ``address`` with ``variables`` in the environment; Temporal alone unless ``fallback``."""
        for variable in VARIABLES:
            self._monkeypatch.delenv(variable, raising=False)
        self._monkeypatch.setenv("TEMPORAL_ADDRESS", address)
        for name, value in variables.items():
            self._monkeypatch.setenv(name, value)
        return Settings.load(
            database_url=self._base.database_url,
            schema_name=self._base.schema_name,
            runner_type="temporal",
            fallback_to_postgres=fallback,
            temporal_task_queue=f"q-{uuid.uuid4()}",
            circuit_failure_threshold=100,  # every schedule call below tries Temporal: none is skipped
            poll_interval=0.5,
            lease_duration=3,
            shutdown_grace=5,
        )


def server_tls(pki: Pki) -> dict[str, str]:
    """Server-only TLS: the test CA inline, and the name on the server's certificate."""
    return {"TEMPORAL_TLS_CA": pki.ca.cert_text, "TEMPORAL_TLS_SERVER_NAME": "localhost"}


async def run_one_job(settings: Settings, registry: JobRegistry) -> None:
    """Open a Temporal-only runner, start its worker, schedule ``echo`` and wait until it completed on Temporal."""
    async with create_runner(settings, registry) as runner:
        assert isinstance(runner, TemporalRunner)
        await runner.start()
        result = await runner.schedule_job("echo", {"n": 1}, tenant_id="t1")
        assert result.runner_type is RunnerType.TEMPORAL
        done = await eventually(
            lambda: runner.get_job_status(result.job_id, tenant_id="t1"),
            lambda job: job.status in (JobStatus.COMPLETED, JobStatus.FAILED),
            within=30,
            interval=0.1,
        )
        assert (done.status, done.result, done.runner_type) == (JobStatus.COMPLETED, {"n": 1}, RunnerType.TEMPORAL)


async def open_temporal_only(settings: Settings, registry: JobRegistry) -> AlgaJobsError:
    """The error opening a Temporal-only runner with these settings raises."""
    runner = create_runner(settings, registry)
    assert isinstance(runner, TemporalRunner)
    with pytest.raises(AlgaJobsError) as caught:
        async with runner:
            pass
    assert isinstance(caught.value, ConfigurationError | EngineUnavailableError)
    return caught.value


async def health_until_misconfigured(runner: Runner) -> list[HealthReport]:
    """``is_healthy()`` reports, polled (bounded) until Temporal is reported misconfigured."""
    reports: list[HealthReport] = []

    async def probe() -> HealthReport:
        reports.append(await runner.is_healthy())
        return reports[-1]

    await eventually(probe, lambda report: report.engines[0].misconfigured, within=15, interval=0.1)
    return reports


async def assert_failover_refused(
    settings: Settings, registry: JobRegistry, caplog: pytest.LogCaptureFixture, *, at_once: bool
) -> None:
    """A failover runner Temporal refuses: unhealthy, misconfigured, jobs run on PostgreSQL, an ERROR logged."""
    # at_once: the first health check and the first job see the refusal. Without it (a missing client
    # certificate) the client sometimes sees only the connection close, so a few bounded tries are allowed.
    caplog.set_level(logging.WARNING, logger="algajobs")
    async with create_runner(settings, registry) as runner:
        assert isinstance(runner, FailoverRunner)
        reports = await health_until_misconfigured(runner)
        if at_once:
            assert len(reports) == 1
        for report in reports:
            temporal, postgres = report.engines
            assert (temporal.engine, temporal.healthy, postgres.healthy) == (RunnerType.TEMPORAL, False, True)
            # PostgreSQL takes every job, so only a misconfigured Temporal makes the report unhealthy; a refusal
            # the client saw as a closed connection reads as an outage, and the report as healthy.
            assert report.healthy is not temporal.misconfigured, report
        assert "TEMPORAL_TLS_*, TEMPORAL_API_KEY" in (reports[-1].engines[0].error or "")

        await runner.start(only=RunnerType.POSTGRES)
        results: list[ScheduleResult] = []
        for _ in range(1 if at_once else 10):
            results.append(await runner.schedule_job("echo", {"n": len(results)}, tenant_id="t1"))
            if any(r.levelno == logging.ERROR and r.name == "algajobs.routing" for r in caplog.records):
                break
        assert [r.runner_type for r in results] == [RunnerType.POSTGRES] * len(results)
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "algajobs.routing"]
        assert errors, [r.getMessage() for r in caplog.records]
        assert "refused job" in errors[0].getMessage() and "misconfigured" in errors[0].getMessage()
        ids = {r.job_id for r in results}

        async def finished() -> list[JobInfo]:
            jobs = await runner.list_jobs(tenant_id="t1", job_name="echo")
            return [j for j in jobs if j.job_id in ids]

        done = await eventually(
            finished,
            lambda jobs: len(jobs) == len(ids) and all(j.status is JobStatus.COMPLETED for j in jobs),
            within=15,
        )
        assert {j.runner_type for j in done} == {RunnerType.POSTGRES}


# -- (a) server-only TLS -----------------------------------------------------


async def test_server_tls_runs_a_job(
    dev_server: str, pki: Pki, environ: EnvSettings, echo_registry: JobRegistry
) -> None:
    """With TEMPORAL_TLS_CA (inline PEM) and TEMPORAL_TLS_SERVER_NAME, scheduling and the worker both go over TLS."""
    async with TlsProxy(dev_server, pki) as proxy:
        await run_one_job(environ.load(proxy.address, fallback=False, **server_tls(pki)), echo_registry)
        assert not proxy.handshake_errors
        assert set(proxy.alpn) == {"h2"}
        paths = set(proxy.header_values(":path"))
        assert {START, POLL} <= paths  # the client's start and the worker's polls both came through the proxy
        assert proxy.header_values("authorization") == []  # no API key, no bearer token
        assert not proxy.sniff_errors


# -- (b) mutual TLS ----------------------------------------------------------


async def test_mutual_tls_with_a_client_certificate_runs_a_job(
    dev_server: str, pki: Pki, environ: EnvSettings, echo_registry: JobRegistry, tmp_path: Path
) -> None:
    """With TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY (file paths) a server requiring client certificates takes jobs."""
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(pki.client.cert)
    key.write_bytes(pki.client.key)
    key.chmod(0o600)
    async with TlsProxy(dev_server, pki, require_client_cert=True) as proxy:
        variables = server_tls(pki) | {"TEMPORAL_TLS_CERT": str(cert), "TEMPORAL_TLS_KEY": str(key)}
        await run_one_job(environ.load(proxy.address, fallback=False, **variables), echo_registry)
        assert not proxy.handshake_errors
        assert START in proxy.header_values(":path")


async def test_mutual_tls_without_a_client_certificate_is_refused(
    dev_server: str, pki: Pki, environ: EnvSettings, echo_registry: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """No client certificate: Temporal alone does not open; failover says misconfigured and runs jobs on PostgreSQL."""
    async with TlsProxy(dev_server, pki, require_client_cert=True) as proxy:
        error = await open_temporal_only(environ.load(proxy.address, fallback=False, **server_tls(pki)), echo_registry)
        # The server's CertificateRequired alert usually reaches the client; sometimes the closed connection
        # wins the race and the client sees only that (no TLS words: it reads as an outage).
        if isinstance(error, ConfigurationError):
            assert "CertificateRequired" in str(error)
        else:
            assert any(w in str(error) for w in ("connection closed", "broken pipe", "ConnectionReset")), error
        assert any("PEER_DID_NOT_RETURN_A_CERTIFICATE" in e for e in proxy.handshake_errors)

        failover = environ.load(proxy.address, fallback=True, **server_tls(pki))
        await assert_failover_refused(failover, echo_registry, caplog, at_once=False)
        assert len(proxy.requests) == 0  # no request ever reached the server


# -- (c) the wrong CA --------------------------------------------------------


async def test_a_server_certificate_from_another_ca_is_refused(
    dev_server: str, pki: Pki, environ: EnvSettings, echo_registry: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """TEMPORAL_TLS_CA of an unrelated CA: ConfigurationError on Temporal alone; failover as for a refused client."""
    wrong = {"TEMPORAL_TLS_CA": pki.other_ca.cert_text, "TEMPORAL_TLS_SERVER_NAME": "localhost"}
    async with TlsProxy(dev_server, pki) as proxy:
        error = await open_temporal_only(environ.load(proxy.address, fallback=False, **wrong), echo_registry)
        assert isinstance(error, ConfigurationError)
        assert "UnknownIssuer" in str(error)
        assert "TEMPORAL_ADDRESS=" in str(error)

        await assert_failover_refused(
            environ.load(proxy.address, fallback=True, **wrong), echo_registry, caplog, at_once=True
        )
        assert len(proxy.requests) == 0
        assert any("UNKNOWN_CA" in e for e in proxy.handshake_errors)


# -- (d) API keys ------------------------------------------------------------


async def test_the_api_key_reaches_the_server_as_a_bearer_token(
    dev_server: str, pki: Pki, environ: EnvSettings, echo_registry: JobRegistry
) -> None:
    """With TEMPORAL_API_KEY every gRPC request (client and worker) carries ``authorization: Bearer <key>``."""
    async with TlsProxy(dev_server, pki) as proxy:
        settings = environ.load(proxy.address, fallback=False, TEMPORAL_API_KEY=API_KEY, **server_tls(pki))
        await run_one_job(settings, echo_registry)
        requests = list(proxy.requests)
        assert {START, POLL} <= {r[":path"] for r in requests}
        assert {r.get("authorization") for r in requests} == {f"Bearer {API_KEY}"}


async def test_a_rejected_api_key_is_a_configuration_error(
    pki: Pki, environ: EnvSettings, echo_registry: JobRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A server answering UNAUTHENTICATED (what Temporal Cloud says to a bad key) is a configuration error."""
    async with RefusingGrpcServer() as refusing, TlsProxy(refusing.address, pki) as proxy:
        variables = server_tls(pki) | {"TEMPORAL_API_KEY": API_KEY}
        error = await open_temporal_only(environ.load(proxy.address, fallback=False, **variables), echo_registry)
        assert isinstance(error, ConfigurationError)
        assert "Unauthenticated" in str(error)
        assert API_KEY not in str(error)
        await assert_failover_refused(
            environ.load(proxy.address, fallback=True, **variables), echo_registry, caplog, at_once=True
        )
        assert {r.get("authorization") for r in refusing.requests} == {f"Bearer {API_KEY}"}
        assert all(API_KEY not in r.getMessage() for r in caplog.records)


async def test_an_api_key_alone_is_never_sent_in_clear_text(
    pki: Pki, environ: EnvSettings, echo_registry: JobRegistry
) -> None:
    """TEMPORAL_API_KEY without TEMPORAL_TLS_* still dials TLS (system roots): our test CA is not among them."""
    async with TlsProxy(f"127.0.0.1:{free_port()}", pki) as proxy:  # the handshake fails before any forwarding
        settings = environ.load(proxy.address, fallback=False, TEMPORAL_API_KEY=API_KEY)
        error = await open_temporal_only(settings, echo_registry)
        assert isinstance(error, ConfigurationError)
        assert "UnknownIssuer" in str(error)  # a TLS handshake happened; a plaintext client gets a broken pipe
        assert len(proxy.requests) == 0


# -- an outage behind TLS is not a configuration problem ----------------------


async def test_a_tls_frontend_whose_cluster_is_down_is_an_outage(
    pki: Pki, environ: EnvSettings, echo_registry: JobRegistry
) -> None:
    """TLS succeeds but the connection drops (frontend up, cluster down): unavailable, not misconfigured."""
    async with TlsProxy(f"127.0.0.1:{free_port()}", pki) as proxy:
        error = await open_temporal_only(environ.load(proxy.address, fallback=False, **server_tls(pki)), echo_registry)
        assert isinstance(error, EngineUnavailableError), error
        async with create_runner(
            environ.load(proxy.address, fallback=True, **server_tls(pki)), echo_registry
        ) as runner:
            report = await runner.is_healthy()
            temporal = report.engines[0]
            assert (temporal.healthy, temporal.misconfigured) == (False, False), temporal
            assert report.healthy  # failover: PostgreSQL takes every job while Temporal is down
            result = await runner.schedule_job("echo", {"n": 1}, tenant_id="t1")
            assert result.runner_type is RunnerType.POSTGRES
        assert not proxy.handshake_errors
