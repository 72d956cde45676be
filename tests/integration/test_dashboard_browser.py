"""The dashboard in a real headless browser: Debian's chromium and chromedriver driven by selenium.

The app is served by uvicorn on a free loopback port in a background thread;
each page is screenshotted under the test's tmp_path, and the overview also
to docs/images/dashboard-overview.png for the README when ALGAJOBS_UPDATE_SCREENSHOTS is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from algajobs import JobRegistry, JobStatus, Runner, Settings
from algajobs.dashboard import DashboardOptions, create_app
from tests.integration.dashboard_jobs import insert_row, insert_worker, register_handlers, run_all

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)
TOKEN = "browser-test-operator-token"
README_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard-overview.png"


@pytest.fixture
def failures(registry: JobRegistry) -> dict[str, int]:
    """``boom`` fails once, then succeeds."""
    remaining = {"boom": 1}
    register_handlers(registry, failures=remaining)
    return remaining


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless chromium with a fresh profile, closed afterwards."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class _Served:
    """A dashboard served by uvicorn in a background thread."""

    def __init__(self, settings: Settings, registry: JobRegistry, options: DashboardOptions) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(settings, registry, options=options), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def _wait_for_url(driver: WebDriver, part: str) -> None:
    """Wait (bounded) until a navigation a click started has reached a URL containing ``part``."""
    WebDriverWait(driver, 10).until(expected_conditions.url_contains(part))


def _text(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _count(driver: WebDriver, status: str, engine: str) -> int:
    return int(_text(driver, f'#counts td[data-status="{status}"][data-engine="{engine}"]'))


def _rows(driver: WebDriver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#job-list tr.job-row"))


def _absent(driver: WebDriver, css: str) -> bool:
    return not driver.find_elements(By.CSS_SELECTOR, css)


def _queue_row(driver: WebDriver, queue: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, f'#queue-list tr.queue-row[data-queue="{queue}"]')


async def test_operator_sees_counts_filters_and_retries_a_failed_job(
    settings: Settings,
    registry: JobRegistry,
    runner: Runner,
    conn: psycopg.AsyncConnection[Any],
    failures: dict[str, int],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    """Overview counts after jobs ran, filtering, a failed job's error and steps, and retry from its page."""
    for i in range(3):
        await runner.schedule_job("ok", {"invoice": i}, tenant_id="acme")
    failed = await runner.schedule_job("boom", {"order": "o-17"}, tenant_id="globex")
    await run_all(runner)
    await insert_row(conn, tenant="acme", type_="sync-crm", status="completed", engine="temporal")
    await runner.schedule_recurring_job("ok", {}, "15 minutes", tenant_id="acme", singleton_key="nightly")

    options = DashboardOptions(token=TOKEN, refresh_seconds=2)
    with _Served(settings, registry, options) as served:
        browser.get(served.url("/"))
        assert _count(browser, "completed", "postgres") == 3
        assert _count(browser, "completed", "temporal") == 1
        assert _count(browser, "failed", "postgres") == 1
        assert _count(browser, "active", "postgres") == 1
        assert "healthy" in _text(browser, '[data-engine-health="postgres"]')
        browser.save_screenshot(str(tmp_path / "overview.png"))
        if os.environ.get("ALGAJOBS_UPDATE_SCREENSHOTS"):  # the README's image, refreshed on request only
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / "overview.png", README_IMAGE)

        browser.get(served.url("/jobs"))
        assert _rows(browser) == 6  # five jobs and the recurring schedule's row
        browser.find_element(By.ID, "filter-tenant").send_keys("globex")
        browser.find_element(By.ID, "apply-filters").click()
        _wait_for_url(browser, "tenant=globex")
        assert _rows(browser) == 1
        browser.save_screenshot(str(tmp_path / "jobs.png"))

        browser.find_element(By.CSS_SELECTOR, "#job-list a.job-link").click()
        _wait_for_url(browser, str(failed.job_id))
        assert _text(browser, "#job-status") == "failed"
        assert "card declined by the test gateway" in _text(browser, "#job-error")
        assert "charge-card" in _text(browser, "#steps")
        assert _absent(browser, "#retry")  # not signed in yet
        job_url = browser.current_url

        browser.find_element(By.ID, "operator-token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        _wait_for_url(browser, "notice=signed-in")
        assert "Signed in" in _text(browser, "#notice")
        browser.get(job_url)
        browser.save_screenshot(str(tmp_path / "job-failed.png"))
        browser.find_element(By.ID, "retry").click()
        _wait_for_url(browser, "notice=retried")
        assert "queued again" in _text(browser, "#notice")
        assert _text(browser, "#job-status") == "queued"

        await run_all(runner, tenant="globex")
        assert (await runner.get_job_status(failed.job_id, tenant_id="globex")).status is JobStatus.COMPLETED
        browser.refresh()
        assert _text(browser, "#job-status") == "completed"
        assert _text(browser, "#job-attempts") == "1 of 1"  # a retry starts with fresh attempts
        browser.save_screenshot(str(tmp_path / "job-retried.png"))

        browser.get(served.url("/schedules"))
        assert "15 minutes" in _text(browser, "#schedule-list")
        browser.save_screenshot(str(tmp_path / "schedules.png"))

    for name in ("overview", "jobs", "job-failed", "job-retried", "schedules"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


async def test_without_a_token_buttons_are_absent_and_posts_refused(
    settings: Settings,
    registry: JobRegistry,
    runner: Runner,
    failures: dict[str, int],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    """A read-only dashboard shows no action buttons or sign-in, and refuses a POST with 403."""
    failed = await runner.schedule_job("boom", {}, tenant_id="acme")
    await run_all(runner, tenant="acme")
    with _Served(settings, registry, DashboardOptions(refresh_seconds=0)) as served:
        browser.get(served.url(f"/jobs/acme/{failed.job_id}"))
        assert _text(browser, "#job-status") == "failed"
        assert _text(browser, "#read-only") == "read-only"
        for css in ("#retry", "#cancel", "#sign-in", "#actions"):
            assert _absent(browser, css), css
        browser.save_screenshot(str(tmp_path / "job-read-only.png"))
        browser.get(served.url("/jobs"))
        assert _absent(browser, "#bulk-retry")

        request = urllib.request.Request(served.url(f"/jobs/acme/{failed.job_id}/retry"), data=b"csrf=x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: ASYNC210 - a one-off probe of the served app
        assert refused.value.code == 403
    assert (await runner.get_job_status(failed.job_id, tenant_id="acme")).status is JobStatus.FAILED


async def test_operator_pauses_then_resumes_a_queue(
    settings: Settings,
    registry: JobRegistry,
    runner: Runner,
    conn: psycopg.AsyncConnection[Any],
    failures: dict[str, int],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    """The queues page shows queues, unserved types and workers; pause (with a reason) and resume are clicked there."""
    waiting = await runner.schedule_job("ok", {}, tenant_id="acme")
    await insert_worker(conn, host="web-1", pid=4242, queues=["default"], types=["ok"])
    await insert_row(conn, tenant="initech", type_="sync-crm", queue="reports", status="queued", engine="postgres")
    with _Served(settings, registry, DashboardOptions(token=TOKEN, refresh_seconds=0)) as served:
        browser.get(served.url("/"))
        browser.find_element(By.ID, "operator-token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        _wait_for_url(browser, "notice=signed-in")
        browser.find_element(By.ID, "nav-queues").click()
        _wait_for_url(browser, "/queues")
        assert _queue_row(browser, "default").get_attribute("data-paused") == "no"
        assert "no worker for type 'sync-crm' in queue 'reports'" in _queue_row(browser, "reports").text
        assert "web-1" in _text(browser, "#worker-list") and "4242" in _text(browser, "#worker-list")
        browser.save_screenshot(str(tmp_path / "queues.png"))

        browser.find_element(By.ID, "reason-default").send_keys("database upgrade")
        browser.find_element(By.ID, "pause-default").click()
        _wait_for_url(browser, "notice=paused")
        assert "paused" in _text(browser, "#notice")
        row = _queue_row(browser, "default")
        assert row.get_attribute("data-paused") == "yes" and "by dashboard: database upgrade" in row.text
        assert [(p.queue, p.reason) for p in await runner.paused_queues()] == [("default", "database upgrade")]
        assert _absent(browser, "#pause-default")
        browser.save_screenshot(str(tmp_path / "queues-paused.png"))

        browser.find_element(By.ID, "resume-default").click()
        _wait_for_url(browser, "notice=resumed")
        assert _queue_row(browser, "default").get_attribute("data-paused") == "no"
        assert await runner.paused_queues() == []
        browser.save_screenshot(str(tmp_path / "queues-resumed.png"))

    await run_all(runner, tenant="acme")  # the resumed queue's job runs
    assert (await runner.get_job_status(waiting.job_id, tenant_id="acme")).status is JobStatus.COMPLETED
    for name in ("queues", "queues-paused", "queues-resumed"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
