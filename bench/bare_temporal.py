"""The baseline: the same no-op work in bare temporalio (one workflow, one activity)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bareNoop")
async def bare_noop(data: dict[str, str]) -> None:
    return None


@workflow.defn(name="bareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, data: dict[str, str]) -> None:
        await workflow.execute_activity(bare_noop, data, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="bareWorkflowUnsandboxed", sandboxed=False)
class BareUnsandboxedWorkflow:
    """The same workflow outside the sandbox, as algajobs runs its own (``--bare-unsandboxed``)."""

    @workflow.run
    async def run(self, data: dict[str, str]) -> None:
        await workflow.execute_activity(bare_noop, data, start_to_close_timeout=timedelta(seconds=30))
