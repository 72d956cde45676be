"""A registry for CLI tests (imported by ``--registry tests.integration.cli_jobs:registry``)."""

from __future__ import annotations

import pydantic

from algajobs import JobContext, JobRegistry

registry = JobRegistry()


class Greeting(pydantic.BaseModel):
    name: str


@registry.handler("greet")
async def greet(ctx: JobContext, data: Greeting) -> str:
    """Say hello."""
    return f"hello {data.name}"
