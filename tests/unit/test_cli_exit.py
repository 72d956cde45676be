"""The ``algajobs`` program ends with ``os._exit`` but keeps what a normal exit does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from algajobs.cli import _exit_status


def _program(argv: list[str], before: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``entry()`` in a fresh interpreter with ``argv``, after the setup code ``before``."""
    code = textwrap.dedent(before) + f"\nimport sys\nsys.argv = ['algajobs', *{argv!r}]\n"
    code += "from algajobs.cli import entry\nentry()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)


def test_output_reaches_a_pipe_and_atexit_handlers_run() -> None:
    done = _program(["--help"], "import atexit\natexit.register(lambda: print('atexit ran'))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: algajobs")
    assert done.stdout.rstrip().endswith("atexit ran")  # printed after the CLI, flushed before os._exit


def test_a_usage_error_keeps_its_status() -> None:
    done = _program(["no-such-command"])
    assert done.returncode == 2
    assert "No such command" in done.stderr


def test_non_daemon_threads_finish_before_the_exit() -> None:
    before = """
        import threading, time
        def late():
            time.sleep(0.2)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
    """
    done = _program(["--help"], before)
    assert done.returncode == 0, done.stderr
    assert "thread finished" in done.stdout


def test_an_idle_thread_pool_does_not_keep_the_program_waiting() -> None:
    """A handler module's executor, used and still referenced: its idle workers are told to stop, as at exit."""
    before = """
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(2)
        assert pool.submit(lambda: 42).result() == 42
    """
    done = _program(["--help"], before)  # hangs until the timeout without threading's exit hooks
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (3, 3), ("bye", 1)])
def test_exit_status_follows_sys_exit(code: object, status: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_status(code) == status
    assert capsys.readouterr().err == ("bye\n" if code == "bye" else "")
