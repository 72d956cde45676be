"""Real Temporal faults for tests: a killable dev server and a loopback proxy that misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

from temporalio.client import Client

from algajobs.testing import temporal_cli_path


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DevServer:
    """`temporal server start-dev` with a database file, so a SIGKILL loses nothing durable."""

    def __init__(self, folder: Path, *, dynamic_config: Mapping[str, object] | None = None) -> None:
        """``dynamic_config``: server settings (``--dynamic-config-value KEY=JSON``), e.g. to enable fairness."""
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._db = folder / "temporal.db"
        self._log = folder / "temporal.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._extra = [
            arg
            for key, value in (dynamic_config or {}).items()
            for arg in ("--dynamic-config-value", f"{key}={json.dumps(value)}")
        ]

    async def start(self, within: float = 30.0) -> None:
        """Start (or restart) the server and wait until it answers."""
        self._proc = subprocess.Popen(
            [
                temporal_cli_path(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--headless", "--db-filename", str(self._db), "--metrics-port", str(free_port()),
                # WAL without fsync: survives SIGKILL of the server (the OS keeps the pages).
                "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=off",
                *self._extra,
            ],
            stdout=self._log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                client = await Client.connect(self.address)
                await client.service_client.check_health()
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("Temporal dev server did not come up")

    def kill(self) -> None:
        """SIGKILL the server (no graceful shutdown)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)

    def close(self) -> None:
        """Kill the server if running."""
        self.kill()


class ProxyMode(StrEnum):
    """How the proxy treats traffic."""

    FORWARD = "forward"
    BLACKHOLE = "blackhole"
    """Accept connections, read everything, forward and answer nothing."""
    DROP_RESPONSES = "drop_responses"
    """Forward requests to the server but drop its answers: outcomes become ambiguous."""


class Proxy:
    """A TCP proxy on 127.0.0.1 whose behaviour can change while connections are open."""

    def __init__(self, upstream_port: int | None, mode: ProxyMode = ProxyMode.FORWARD) -> None:
        self.mode = mode
        self._upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address = ""

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if self.mode is ProxyMode.BLACKHOLE or self._upstream_port is None:
                while await reader.read(65536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            await asyncio.gather(
                self._pump(reader, up_writer, upstream=True), self._pump(up_reader, writer, upstream=False)
            )
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, upstream: bool) -> None:
        while data := await source.read(65536):
            if self.mode is ProxyMode.BLACKHOLE:
                continue
            if self.mode is ProxyMode.DROP_RESPONSES and not upstream:
                continue
            sink.write(data)
            await sink.drain()
