"""A throwaway PostgreSQL cluster a test owns: its own directory, port and socket; stopped and deleted afterwards.

Fault tests stop and restart PostgreSQL; they do it to a cluster of their
own, never to the machine's shared server. The Debian binaries under
``/usr/lib/postgresql/*/bin`` are called directly, without Debian's cluster wrappers.
``initdb`` refuses to run as root, so as root every binary runs as the
``postgres`` OS user and the directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import pytest

StopMode = Literal["fast", "immediate"]
_OS_USER = "postgres"


def _free_port() -> int:
    # Not temporal_tools.free_port: this helper stays free of algajobs, the library under test.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bin_dir() -> Path:
    """The newest Debian PostgreSQL binary directory; skips the test when there is none."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    newest = max(found, key=lambda p: [int(part) for part in Path(p).parts[4].split(".") if part.isdigit()])
    return Path(newest).parent


class PgCluster:
    """One PostgreSQL cluster in a temporary directory: trust auth, 127.0.0.1 only, fsync off.

    Use it as a context manager: leaving it always stops the server and
    removes the directory. Every wait is bounded.
    """

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._as_root = os.geteuid() == 0
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="algajobs-pg-"))  # short: a socket path must fit 107 bytes
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        try:
            if self._as_root:
                owner = pwd.getpwnam(_OS_USER)
                os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.root}'\n"
                    # Throwaway data: durability only costs time here.
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def dsn(self) -> str:
        """Connection string for the ``postgres`` database as the ``postgres`` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, within: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-W", timeout=within)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            ready = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1", check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL did not accept connections within {within}s:\n{self._log_tail()}")

    def stop(self, mode: StopMode = "fast", within: float = 30.0) -> None:
        """Stop the server (``immediate``: no shutdown checkpoint, clients cut off) and wait until it is gone."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", str(int(within)), timeout=within + 5)

    def restart(self, within: float = 30.0) -> None:
        """Stop (fast) and start again, waiting for both."""
        self.stop("fast", within)
        self.start(within)

    @property
    def running(self) -> bool:
        """Whether the server's postmaster is alive."""
        return self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    def cleanup(self) -> None:
        """Stop the server if it runs (killing it if a stop fails) and delete the directory."""
        try:
            if self.data.exists() and self.running:
                try:
                    self.stop("immediate", within=15)
                except (RuntimeError, subprocess.TimeoutExpired):
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    def _run(
        self, program: str, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", _OS_USER, "--", *command]
        try:
            # cwd: the postgres user may not be able to enter the caller's working directory.
            return subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=check, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"{program} failed ({exc.returncode}): {exc.stderr}\n{self._log_tail()}") from exc

    def _kill_postmaster(self) -> None:
        # SIGQUIT is PostgreSQL's immediate shutdown; the pid is this cluster's own postmaster.
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"
