"""Replay safety: every recorded history of every release replays against the current workflow code.

Histories live in ``tests/histories/<release>/``; record new ones with
``python -m tests.histories.record --release <version>`` whenever the
workflow changes, and keep the old ones: a workflow still running when a
worker is upgraded replays its history on the new code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from algajobs.temporal.connection import workflow_runner
from algajobs.workflows import GenericJobWorkflow

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*/*.json"))


def test_histories_of_every_path_are_kept() -> None:
    """Each release folder holds the recorded paths (a history file went missing otherwise)."""
    releases = {p.parent.name for p in HISTORIES}
    assert {"0.1.0", "0.2.0", "0.3.0"} <= releases
    for release in releases:
        names = {p.stem for p in HISTORIES if p.parent.name == release}
        assert {"immediate", "delayed", "cancelled_while_waiting", "cancelled_while_running", "retried"} <= names
    newest = {p.stem for p in HISTORIES if p.parent.name == "0.3.0"}
    assert {"paused_then_resumed", "waited_for_a_handler"} <= newest


@pytest.mark.parametrize(
    ("path", "text"), [(p, p.read_text()) for p in HISTORIES], ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES]
)
async def test_recorded_history_replays_on_the_current_code(path: Path, text: str) -> None:
    """A history recorded by a release replays without a nondeterminism error."""
    history = WorkflowHistory.from_json(path.stem, text)
    replayer = Replayer(
        workflows=[GenericJobWorkflow], workflow_runner=workflow_runner(), data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path}: {result.replay_failure}"
