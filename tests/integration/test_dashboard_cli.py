"""``algajobs dashboard`` serves the dashboard until it is told to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from click.testing import CliRunner

from algajobs import Settings
from algajobs.cli import main


def test_dashboard_command_serves_the_overview_and_stops_on_sigterm(settings: Settings) -> None:
    """The command listens on --host/--port, answers the overview read-only, and shuts down cleanly on SIGTERM."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "JOB_SCHEMA": settings.schema_name,
        "JOB_RUNNER_TYPE": "postgres",
    }
    env.pop("JOB_DASHBOARD_TOKEN", None)
    command = [sys.executable, "-m", "algajobs", "dashboard", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.monotonic() + 20, ""
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    body = answer.read().decode()
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.1)
        assert 'id="counts"' in body and 'id="read-only"' in body
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: exit by SIGTERM is the clean end.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"dashboard on http://127.0.0.1:{port}/ (read-only)" in output


def test_dashboard_command_refuses_a_bad_port() -> None:
    """A port outside 1..65535 is a usage error (exit 2) before anything starts."""
    result = CliRunner().invoke(main, ["dashboard", "--port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output
