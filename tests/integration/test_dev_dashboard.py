"""``algajobs dev`` serves the dashboard beside its worker, prints its URL and the Temporal Web UI's, and stops both."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from algajobs import Settings
from algajobs.cli import main

ROOT = Path(__file__).resolve().parents[2]
JOB_LINE = re.compile(r"^\s+([0-9a-f-]{36}) completed attempts=", re.M)


def _free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


class _Lines:
    """A process's output, read by a thread, so a wait for a line is bounded by a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.text = ""
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._process = process
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, *, within: float) -> re.Match[str]:
        """The first match of ``pattern`` in the output so far, waiting up to ``within`` s for it."""
        deadline = time.monotonic() + within
        while (found := re.search(pattern, self.text, re.M)) is None:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} within {within} s:\n{self.text}") from None
            if line is None:
                raise AssertionError(f"the process ended without {pattern!r}:\n{self.text}")
            self.text += line
        return found

    def rest(self, *, within: float) -> str:
        """All output until the process closes it (at most ``within`` s)."""
        deadline = time.monotonic() + within
        while (line := self._queue.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            self.text += line
        return self.text


@pytest.fixture
def dev_env(settings: Settings) -> dict[str, str]:
    """The environment of an ``algajobs dev`` on the test's schema, read-only dashboard."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "JOB_SCHEMA": settings.schema_name}
    env.pop("JOB_DASHBOARD_TOKEN", None)
    env.pop("JOB_DASHBOARD_TENANT", None)
    return env


@pytest.fixture
def dev(dev_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], _Lines, int]]:
    """A running ``algajobs dev --dashboard-port <free port>``; killed afterwards if the test left it running."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "algajobs", "dev", "--dashboard-port", str(port)],
        cwd=ROOT,
        env=dev_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, _Lines(process), port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_dev_serves_the_dashboard_and_the_temporal_web_ui_and_stops_on_sigint(
    dev: tuple[subprocess.Popen[str], _Lines, int],
) -> None:
    """The printed dashboard URL shows the demo's jobs, links to the printed Web UI, and SIGINT ends all with exit 0."""
    process, output, port = dev
    dashboard = output.wait_for(r"^\s+dashboard (http://127\.0\.0\.1:(\d+)/) \(read-only\)$", within=90)
    assert dashboard[2] == str(port)
    output.wait_for(r"^stack running", within=120)  # the demo finished
    web_ui = output.wait_for(r"^\s+Temporal Web UI\s+(http://127\.0\.0\.1:\d+)/$", within=5)[1]
    assert f"  dashboard        {dashboard[1]}" in output.text

    status, overview = _get(dashboard[1])
    assert status == 200
    assert 'id="counts"' in overview and 'id="read-only"' in overview
    assert '<td data-status="completed" data-engine="temporal">3</td>' in overview  # the three demo jobs
    job_id = JOB_LINE.findall(output.text)[0]
    status, job_page = _get(f"{dashboard[1]}jobs/demo-tenant/{job_id}")
    assert status == 200
    assert f'href="{web_ui}/namespaces/default/workflows/' in job_page
    assert _get(f"{web_ui}/")[0] == 200

    process.send_signal(signal.SIGINT)
    text = output.rest(within=60)
    assert process.wait(timeout=10) == 0, text
    assert text.rstrip().endswith("stopped")
    assert "Traceback" not in text, text
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the dashboard's port any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_dev_refuses_a_taken_dashboard_port_before_starting_anything(dev_env: dict[str, str]) -> None:
    """A --dashboard-port something listens on fails at once with exit 1 and says which port, starting nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "algajobs", "dev", "--dashboard-port", str(port)],
            cwd=ROOT,
            env=dev_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "[1/5]" not in proc.stdout


def test_dev_refuses_a_dashboard_port_with_no_dashboard() -> None:
    """--dashboard-port with --no-dashboard is a usage error (exit 2)."""
    result = CliRunner().invoke(main, ["dev", "--no-dashboard", "--dashboard-port", "9000"])
    assert result.exit_code == 2 and "cannot be combined" in result.output
