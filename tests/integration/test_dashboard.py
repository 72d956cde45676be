"""The dashboard's pages and actions, through Starlette's TestClient, against a real PostgreSQL schema."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from algajobs import JobRegistry, JobStatus, Runner, Settings
from algajobs.dashboard import DashboardOptions, create_app, reads
from algajobs.sql import QUERIES
from tests.integration.dashboard_jobs import (
    cell,
    csrf_of,
    insert_row,
    insert_worker,
    listed_ids,
    register_handlers,
    run_all,
)

TOKEN = "operator-secret-for-tests"


@pytest.fixture
def failures(registry: JobRegistry) -> dict[str, int]:
    """How many more times ``boom`` fails; handlers registered on the test's registry."""
    remaining = {"boom": 1}
    register_handlers(registry, failures=remaining)
    return remaining


def _client(settings: Settings, registry: JobRegistry, **options: Any) -> TestClient:
    opts = DashboardOptions(refresh_seconds=0, **options)
    return TestClient(create_app(settings, registry, options=opts), follow_redirects=False)


@pytest.fixture
def operator_client(settings: Settings, registry: JobRegistry) -> Iterator[TestClient]:
    """A client of a dashboard with an operator token, signed in."""
    with _client(settings, registry, token=TOKEN) as client:
        csrf = csrf_of(client.get("/").text)
        answer = client.post("/login", data={"csrf": csrf, "token": TOKEN})
        assert answer.status_code == 303 and "algajobs_operator" in answer.cookies
        yield client


@pytest.fixture
def read_only_client(settings: Settings, registry: JobRegistry) -> Iterator[TestClient]:
    """A client of a dashboard without an operator token."""
    with _client(settings, registry) as client:
        yield client


@pytest.mark.usefixtures("failures")
async def test_overview_counts_jobs_by_status_and_engine(
    runner: Runner, conn: psycopg.AsyncConnection[Any], read_only_client: TestClient
) -> None:
    """After jobs ran, the overview shows each (status, engine) count and the engine health."""
    for i in range(3):
        await runner.schedule_job("ok", {"i": i}, tenant_id="acme")
    await runner.schedule_job("boom", {}, tenant_id="globex")
    await run_all(runner)
    await insert_row(conn, tenant="acme", status="completed", engine="temporal")
    await insert_row(conn, tenant="acme", status="queued", engine="temporal")

    page = read_only_client.get("/")
    assert page.status_code == 200
    html = page.text
    assert cell(html, "completed", "postgres") == 3
    assert cell(html, "completed", "temporal") == 1
    assert cell(html, "completed", "total") == 4
    assert cell(html, "failed", "postgres") == 1
    assert cell(html, "queued", "temporal") == 1
    assert 'data-engine-health="postgres" class="ok"' in html
    assert "3 completed, 1 failed" in html  # the last hour's throughput (raw rows have no completed_at)
    # One tenant's view counts only its jobs; the live fragment matches the page.
    assert cell(read_only_client.get("/?tenant=globex").text, "completed", "total") == 0
    assert cell(read_only_client.get("/live?tenant=acme").text, "completed", "total") == 4


async def test_job_list_filters_narrow_the_list(
    conn: psycopg.AsyncConnection[Any], read_only_client: TestClient
) -> None:
    """Tenant, status, type, engine and time range each narrow the list."""
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    a_old = await insert_row(conn, tenant="acme", type_="mail", status="failed", engine="postgres", created_at=base)
    a_new = await insert_row(
        conn, tenant="acme", type_="mail", status="completed", created_at=base + timedelta(hours=2)
    )
    b = await insert_row(conn, tenant="globex", type_="sms", status="failed", created_at=base + timedelta(hours=1))

    def ids(query: str) -> set[str]:
        answer = read_only_client.get(f"/jobs{query}")
        assert answer.status_code == 200, answer.text
        return set(listed_ids(answer.text))

    assert ids("") == {str(a_old), str(a_new), str(b)}
    assert ids("?tenant=acme") == {str(a_old), str(a_new)}
    assert ids("?status=failed") == {str(a_old), str(b)}
    assert ids("?type=sms") == {str(b)}
    assert ids("?engine=postgres") == {str(a_old)}
    assert ids("?since=2024-05-01T12:30&until=2024-05-01T13:30") == {str(b)}
    assert ids("?tenant=acme&status=failed&type=mail") == {str(a_old)}
    assert "No jobs match" in read_only_client.get("/jobs?tenant=nobody").text
    assert read_only_client.get("/jobs?status=exploded").status_code == 400
    assert read_only_client.get("/jobs?since=yesterday").status_code == 400


async def test_job_list_pages_by_keyset(
    settings: Settings, registry: JobRegistry, conn: psycopg.AsyncConnection[Any]
) -> None:
    """Following "older" links visits every job once, newest first, even with equal timestamps."""
    same = datetime(2024, 6, 1, tzinfo=UTC)
    for hour in range(4):
        await insert_row(conn, tenant="acme", created_at=same + timedelta(hours=hour))
    for _ in range(4):
        await insert_row(conn, tenant="acme", created_at=same)  # ties broken by job_id
    cur = await conn.execute("SELECT job_id::text FROM jobs ORDER BY created_at DESC, job_id DESC")
    expected = [row[0] for row in await cur.fetchall()]

    seen: list[str] = []
    with _client(settings, registry, page_size=3) as client:
        url: str | None = "/jobs?tenant=acme"
        while url is not None:
            html = client.get(url).text
            page = listed_ids(html)
            assert 1 <= len(page) <= 3
            seen += page
            link = re.search(r'href="([^"]+)" id="next-page"', html)
            url = link.group(1).replace("&amp;", "&") if link else None
        assert client.get("/jobs?after=not-a-cursor").status_code == 400
    assert seen == expected
    assert "OFFSET" not in QUERIES["dashboard_list_jobs"].upper()


async def test_failed_job_page_shows_error_steps_and_progress(
    runner: Runner, failures: dict[str, int], read_only_client: TestClient
) -> None:
    """A failed job's page shows its error, its recorded steps, progress, attempts and payload."""
    job = await runner.schedule_job("boom", {"order": "o-17"}, tenant_id="acme")
    await run_all(runner, tenant="acme")

    page = read_only_client.get(f"/jobs/acme/{job.job_id}")
    assert page.status_code == 200
    html = page.text
    assert 'id="job-status">failed<' in html
    assert "card declined by the test gateway" in html
    assert "charge-card" in html and "charging the card" in html
    assert 'id="job-attempts">1 of 1<' in html
    assert "o-17" in html
    assert 'id="temporal-link"' not in html  # a PostgreSQL job has no workflow
    assert read_only_client.get(f"/jobs/globex/{job.job_id}").status_code == 404  # another tenant's
    assert read_only_client.get("/jobs/acme/not-a-uuid").status_code == 404


async def test_temporal_job_links_to_its_workflow(
    settings: Settings, registry: JobRegistry, conn: psycopg.AsyncConnection[Any]
) -> None:
    """A Temporal job's page links to its workflow run in the configured Temporal Web UI."""
    job_id = await insert_row(conn, tenant="acme", external_id="alga-job-x", external_run_id="run-1")
    with _client(settings, registry, temporal_ui_url="https://temporal.example/") as client:
        html = client.get(f"/jobs/acme/{job_id}").text
    assert 'href="https://temporal.example/namespaces/default/workflows/alga-job-x/run-1/history"' in html


@pytest.mark.usefixtures("failures")
async def test_payload_secrets_are_redacted(runner: Runner, read_only_client: TestClient) -> None:
    """Values of secret-looking payload keys never reach the page."""
    job = await runner.schedule_job("ok", {"user": "ann", "api_key": "sk-live-123"}, tenant_id="acme")
    html = read_only_client.get(f"/jobs/acme/{job.job_id}").text
    assert "ann" in html and "sk-live-123" not in html and "***redacted***" in html


async def test_read_only_dashboard_has_no_actions_and_refuses_posts(
    runner: Runner, failures: dict[str, int], read_only_client: TestClient
) -> None:
    """Without JOB_DASHBOARD_TOKEN there are no buttons or sign-in, and every POST answers 403."""
    job = await runner.schedule_job("boom", {}, tenant_id="acme")
    await run_all(runner, tenant="acme")
    page = read_only_client.get(f"/jobs/acme/{job.job_id}").text
    assert 'id="retry"' not in page and 'id="cancel"' not in page and 'id="sign-in"' not in page
    assert 'id="bulk-retry"' not in read_only_client.get("/jobs").text
    csrf = read_only_client.cookies["algajobs_csrf"]  # a valid double-submit pair does not unlock a read-only one
    for path in (f"/jobs/acme/{job.job_id}/retry", f"/jobs/acme/{job.job_id}/cancel", "/jobs/retry-failed"):
        assert read_only_client.post(path, data={"csrf": csrf}).status_code == 403
    assert read_only_client.post("/login", data={"csrf": csrf, "token": "anything"}).status_code == 403
    assert read_only_client.get(f"/jobs/acme/{job.job_id}/retry").status_code == 405
    assert (await runner.get_job_status(job.job_id, tenant_id="acme")).status is JobStatus.FAILED


async def test_posts_without_a_matching_csrf_token_are_refused(
    runner: Runner, failures: dict[str, int], operator_client: TestClient
) -> None:
    """A signed-in operator's POST without the CSRF field, or with another one, answers 403."""
    job = await runner.schedule_job("boom", {}, tenant_id="acme")
    await run_all(runner, tenant="acme")
    retry = f"/jobs/acme/{job.job_id}/retry"
    assert operator_client.post(retry).status_code == 403
    assert operator_client.post(retry, data={"csrf": "forged"}).status_code == 403
    operator_client.cookies.delete("algajobs_csrf")
    assert operator_client.post(retry, data={"csrf": "forged"}).status_code == 403
    assert (await runner.get_job_status(job.job_id, tenant_id="acme")).status is JobStatus.FAILED


async def test_actions_need_the_operator_token(
    settings: Settings, registry: JobRegistry, runner: Runner, failures: dict[str, int]
) -> None:
    """With a token configured, a visitor who has not signed in (or gave a wrong token) sees no buttons and gets 403."""
    job = await runner.schedule_job("boom", {}, tenant_id="acme")
    await run_all(runner, tenant="acme")
    with _client(settings, registry, token=TOKEN) as client:
        page = client.get(f"/jobs/acme/{job.job_id}").text
        assert 'id="sign-in"' in page and 'id="retry"' not in page
        csrf = csrf_of(page)
        answer = client.post("/login", data={"csrf": csrf, "token": "wrong"})
        assert answer.status_code == 303 and "notice=bad-token" in answer.headers["location"]
        assert "algajobs_operator" not in client.cookies
        assert client.post(f"/jobs/acme/{job.job_id}/retry", data={"csrf": csrf}).status_code == 403
        client.cookies.set("algajobs_operator", "1700000000.forged")
        assert client.post(f"/jobs/acme/{job.job_id}/retry", data={"csrf": csrf}).status_code == 403


async def test_operator_retries_and_cancels_a_job(
    runner: Runner, failures: dict[str, int], operator_client: TestClient
) -> None:
    """A signed-in operator's retry runs a failed job again; cancel stops a waiting one."""
    failed = await runner.schedule_job("boom", {}, tenant_id="acme")
    await run_all(runner, tenant="acme")
    page = operator_client.get(f"/jobs/acme/{failed.job_id}").text
    assert 'id="retry"' in page and 'id="cancel"' not in page
    answer = operator_client.post(f"/jobs/acme/{failed.job_id}/retry", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303 and answer.headers["location"].endswith("notice=retried")
    assert (await runner.get_job_status(failed.job_id, tenant_id="acme")).status is JobStatus.QUEUED
    await run_all(runner, tenant="acme")
    assert (await runner.get_job_status(failed.job_id, tenant_id="acme")).status is JobStatus.COMPLETED

    later = await runner.schedule_job_at("ok", {}, datetime.now(UTC) + timedelta(hours=1), tenant_id="acme")
    page = operator_client.get(f"/jobs/acme/{later.job_id}").text
    assert 'id="cancel"' in page
    answer = operator_client.post(f"/jobs/acme/{later.job_id}/cancel", data={"csrf": csrf_of(page)})
    assert answer.status_code == 303 and answer.headers["location"].endswith("notice=cancelled")
    assert (await runner.get_job_status(later.job_id, tenant_id="acme")).status is JobStatus.CANCELLED


async def test_bulk_retry_requeues_the_filtered_failed_jobs(
    runner: Runner, failures: dict[str, int], operator_client: TestClient
) -> None:
    """Bulk retry requeues the failed jobs the filters select, and no others."""
    failures["boom"] = 3
    acme = [await runner.schedule_job("boom", {}, tenant_id="acme") for _ in range(2)]
    globex = await runner.schedule_job("boom", {}, tenant_id="globex")
    await run_all(runner)
    csrf = csrf_of(operator_client.get("/jobs?tenant=acme&status=failed").text)
    answer = operator_client.post("/jobs/retry-failed", data={"csrf": csrf, "tenant": "acme"})
    assert answer.status_code == 303 and "count=2" in answer.headers["location"]
    for job in acme:
        assert (await runner.get_job_status(job.job_id, tenant_id="acme")).status is JobStatus.QUEUED
    assert (await runner.get_job_status(globex.job_id, tenant_id="globex")).status is JobStatus.FAILED


async def test_pinned_tenant_sees_only_its_jobs(
    settings: Settings, registry: JobRegistry, conn: psycopg.AsyncConnection[Any]
) -> None:
    """A dashboard pinned to one tenant ignores ?tenant= and hides other tenants' jobs."""
    mine = await insert_row(conn, tenant="acme")
    theirs = await insert_row(conn, tenant="globex")
    with _client(settings, registry, tenant="acme") as client:
        assert set(listed_ids(client.get("/jobs?tenant=globex").text)) == {str(mine)}
        assert cell(client.get("/?tenant=globex").text, "completed", "total") == 1
        assert client.get(f"/jobs/globex/{theirs}").status_code == 404
        assert client.get(f"/jobs/acme/{mine}").status_code == 200


@pytest.mark.usefixtures("failures")
async def test_schedules_page_lists_recurring_jobs(runner: Runner, read_only_client: TestClient) -> None:
    """A recurring job appears on the schedules page with its spec and next run."""
    await runner.schedule_recurring_job("ok", {}, "15 minutes", tenant_id="acme", singleton_key="nightly")
    html = read_only_client.get("/schedules").text
    assert "nightly" in html and "15 minutes" in html and 'class="schedule-row"' in html


def _queue_row(html: str, queue: str) -> str:
    """The queues page's row of ``queue`` (its HTML)."""
    match = re.search(rf'<tr class="queue-row" data-queue="{queue}".*?</tr>', html, re.S)
    assert match, f"no row for queue {queue}"
    return match.group(0)


async def test_job_list_filters_by_queue_and_the_job_page_names_it(
    conn: psycopg.AsyncConnection[Any], read_only_client: TestClient
) -> None:
    """The queue filter narrows the list to one queue; each row and the job's page show the job's queue."""
    mail = await insert_row(conn, tenant="acme", type_="mail")
    bill = await insert_row(conn, tenant="acme", type_="invoice", queue="billing", status="failed")
    other = await insert_row(conn, tenant="globex", type_="invoice", queue="billing")

    def ids(query: str) -> set[str]:
        answer = read_only_client.get(f"/jobs{query}")
        assert answer.status_code == 200, answer.text
        return set(listed_ids(answer.text))

    assert ids("?queue=billing") == {str(bill), str(other)}
    assert ids("?queue=default") == {str(mail)}
    assert ids("?queue=billing&tenant=acme&status=failed") == {str(bill)}
    assert ids("?queue=nothing-here") == set()
    assert read_only_client.get("/jobs?queue=Not%20A%20Queue").status_code == 400
    listing = read_only_client.get("/jobs?queue=billing").text
    assert 'id="filter-queue" value="billing"' in listing and "<td>billing</td>" in listing
    page = read_only_client.get(f"/jobs/acme/{bill}").text
    assert re.search(r'id="job-queue"><a href="[^"]*queue=billing">billing</a>', page), page


async def test_queues_page_shows_pauses_unserved_types_and_live_workers(
    runner: Runner, conn: psycopg.AsyncConnection[Any], read_only_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each known queue appears with its pause, queued jobs and types no live worker runs; live workers are listed."""
    await insert_worker(conn, host="web-1", pid=4242, queues=["default", "billing"], types=["invoice", "mail"])
    await insert_worker(conn, host="gone-1", pid=7, queues=["ghost"], types=["mail"], silent_for=timedelta(hours=1))
    for _ in range(3):
        await insert_row(conn, tenant="acme", type_="invoice", queue="billing", status="queued", engine="postgres")
    await insert_row(conn, tenant="globex", type_="sync-crm", queue="reports", status="queued", engine="postgres")
    await insert_row(conn, tenant="acme", type_="mail", queue="reports", status="completed", engine="postgres")
    assert await runner.pause_queue("archive", paused_by="ops", reason="month-end freeze")

    html = read_only_client.get("/queues").text
    assert re.findall(r'class="queue-row" data-queue="([^"]+)"', html) == ["archive", "billing", "default", "reports"]
    archive = _queue_row(html, "archive")
    assert 'data-paused="yes"' in archive and "by ops: month-end freeze" in archive
    billing = _queue_row(html, "billing")
    assert 'data-paused="no"' in billing and '<td class="queued">3</td>' in billing
    assert '<td class="workers">1</td>' in billing and "no worker" not in billing
    reports = _queue_row(html, "reports")
    assert "no worker for type &#39;sync-crm&#39; in queue &#39;reports&#39; (postgres)" in reports
    assert '<td class="queued">1</td>' in reports and '<td class="workers bad">0</td>' in reports
    workers = re.findall(r'<tr class="worker-row".*?</tr>', html, re.S)
    assert len(workers) == 1 and "web-1" in workers[0] and "4242" in workers[0]
    assert "default, billing" in workers[0] and "postgres" in workers[0] and "gone-1" not in html
    assert 'id="pause-billing"' not in html and 'id="resume-archive"' not in html  # read-only: no buttons
    monkeypatch.setattr(reads, "QUEUED_CAP", 2)  # a long backlog is counted up to the cap only
    assert '<td class="queued">2+</td>' in _queue_row(read_only_client.get("/queues").text, "billing")
    # The overview names the paused queue and the type nobody serves.
    overview = read_only_client.get("/").text
    assert "queue archive is paused" in overview and "sync-crm" in overview


@pytest.mark.usefixtures("failures")
async def test_operator_pauses_and_resumes_a_queue(runner: Runner, operator_client: TestClient) -> None:
    """A signed-in operator pauses a queue with a reason from the queues page, then resumes it."""
    await runner.schedule_job("ok", {}, tenant_id="acme")  # the default queue holds a queued job
    page = operator_client.get("/queues").text
    assert 'id="pause-default"' in page and 'id="pause-other"' in page
    form = {"csrf": csrf_of(page), "queue": "default", "reason": "  database upgrade "}

    answer = operator_client.post("/queues/pause", data=form)
    assert answer.status_code == 303 and answer.headers["location"].endswith("/queues?notice=paused")
    [paused] = await runner.paused_queues()
    assert (paused.queue, paused.paused_by, paused.reason) == ("default", "dashboard", "database upgrade")
    page = operator_client.get("/queues").text
    assert 'id="resume-default"' in page and 'id="pause-default"' not in page
    assert "by dashboard: database upgrade" in _queue_row(page, "default")
    assert operator_client.post("/queues/pause", data=form).headers["location"].endswith("notice=already-paused")

    answer = operator_client.post("/queues/resume", data={"csrf": form["csrf"], "queue": "default"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("/queues?notice=resumed")
    assert await runner.paused_queues() == []
    resume_again = operator_client.post("/queues/resume", data={"csrf": form["csrf"], "queue": "default"})
    assert resume_again.headers["location"].endswith("notice=not-paused")

    # A queue with no jobs or workers yet can be paused by name; a bad name is refused.
    answer = operator_client.post("/queues/pause", data={"csrf": form["csrf"], "queue": "nightly"})
    assert answer.status_code == 303 and [p.queue for p in await runner.paused_queues()] == ["nightly"]
    assert operator_client.post("/queues/pause", data={"csrf": form["csrf"], "queue": "No Good"}).status_code == 400
    assert operator_client.post("/queues/pause", data={"csrf": form["csrf"]}).status_code == 400


@pytest.mark.usefixtures("failures")
async def test_queue_actions_need_the_token_a_session_and_the_csrf_field(
    settings: Settings, registry: JobRegistry, runner: Runner, read_only_client: TestClient
) -> None:
    """Pause and resume answer 403 on a read-only dashboard, before sign-in, and without a matching CSRF field."""
    await runner.schedule_job("ok", {}, tenant_id="acme")
    assert 'id="pause-default"' not in read_only_client.get("/queues").text
    csrf = read_only_client.cookies["algajobs_csrf"]
    for path in ("/queues/pause", "/queues/resume"):
        assert read_only_client.post(path, data={"csrf": csrf, "queue": "default"}).status_code == 403
    assert read_only_client.get("/queues/pause").status_code == 405

    with _client(settings, registry, token=TOKEN) as client:
        page = client.get("/queues").text
        assert 'id="pause-default"' not in page  # not signed in
        csrf = csrf_of(page)
        assert client.post("/queues/pause", data={"csrf": csrf, "queue": "default"}).status_code == 403
        assert client.post("/login", data={"csrf": csrf, "token": TOKEN}).status_code == 303
        assert client.post("/queues/pause", data={"queue": "default"}).status_code == 403
        assert client.post("/queues/pause", data={"csrf": "forged", "queue": "default"}).status_code == 403
    assert await runner.paused_queues() == []

    await runner.pause_queue("default")
    with _client(settings, registry, token=TOKEN) as client:
        csrf = csrf_of(client.get("/queues").text)
        assert client.post("/login", data={"csrf": csrf, "token": TOKEN}).status_code == 303
        assert client.post("/queues/resume", data={"csrf": "forged", "queue": "default"}).status_code == 403
    assert [p.queue for p in await runner.paused_queues()] == ["default"]


async def test_pinned_tenant_cannot_pause_queues_or_see_other_tenants_work(
    settings: Settings, registry: JobRegistry, runner: Runner, conn: psycopg.AsyncConnection[Any]
) -> None:
    """A tenant-pinned dashboard refuses pause and resume (403) even to an operator; it lists paused queues only."""
    await insert_worker(conn, host="web-1", pid=4242, queues=["default"], types=["mail"])
    await insert_row(conn, tenant="globex", type_="sync-crm", queue="reports", status="queued", engine="postgres")
    await runner.pause_queue("billing", paused_by="ops", reason="audit")
    with _client(settings, registry, token=TOKEN, tenant="acme") as client:
        csrf = csrf_of(client.get("/").text)
        assert client.post("/login", data={"csrf": csrf, "token": TOKEN}).status_code == 303
        page = client.get("/queues").text
        assert 'id="queues-scoped"' in page and "by ops: audit" in _queue_row(page, "billing")
        assert "web-1" not in page and "sync-crm" not in page and "reports" not in page
        assert 'id="resume-billing"' not in page and 'id="pause-other"' not in page
        for path, queue in (("/queues/resume", "billing"), ("/queues/pause", "default")):
            refused = client.post(path, data={"csrf": csrf, "queue": queue})
            assert refused.status_code == 403 and "shared by every tenant" in refused.text
        overview = client.get("/").text
        assert "queue billing is paused" in overview and "sync-crm" not in overview
    assert [p.queue for p in await runner.paused_queues()] == ["billing"]
