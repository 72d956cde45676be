"""The local stack behind ``algajobs dev``: PostgreSQL and a Temporal dev server.

PostgreSQL is ``DATABASE_URL`` when set, else the local default when it
answers, else a throwaway cluster (Debian's ``initdb``/``pg_ctl``) in a temp
directory on a free loopback port, removed on exit.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from .db import probe_postgres
from .errors import ConfigurationError
from .settings import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _answers(url: str) -> bool:
    return (await probe_postgres(Settings.load(database_url=url))).healthy


@asynccontextmanager
async def local_postgres(*, throwaway: bool, echo: Callable[[str], None]) -> AsyncIterator[str]:
    """Yield a PostgreSQL URL: DATABASE_URL, the local default, or a throwaway cluster."""
    configured = os.environ.get("DATABASE_URL")
    if not throwaway:
        for url in [configured] if configured else [DEFAULT_URL]:
            if await _answers(url):
                yield url
                return
        if configured:
            raise ConfigurationError(f"DATABASE_URL={configured} does not answer")
        echo("no PostgreSQL at 127.0.0.1:5432; starting a throwaway one")
    async with _throwaway_cluster() as url:
        yield url


@asynccontextmanager
async def _throwaway_cluster() -> AsyncIterator[str]:
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise ConfigurationError("no PostgreSQL reachable and no initdb/pg_ctl installed; set DATABASE_URL")
    # initdb refuses to run as root; run the cluster as the postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = tempfile.mkdtemp(prefix="algajobs-pg-")
    data = os.path.join(root, "data")
    if as_user:
        shutil.chown(root, "postgres")
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    try:
        await asyncio.to_thread(run, initdb, "-D", data, "-U", "postgres", "--auth=trust")
        # -l: the server must not inherit our pipes, or waiting on pg_ctl never ends.
        log = os.path.join(root, "server.log")
        await asyncio.to_thread(run, pg_ctl, "-D", data, "-l", log, "-o", options, "-w", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            await asyncio.to_thread(run, pg_ctl, "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
