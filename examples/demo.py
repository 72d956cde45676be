"""Run the demo jobs on the PostgreSQL engine alone (schema ``algajobs_demo``).

For the full local stack with Temporal, run ``algajobs dev`` instead.
"""

from __future__ import annotations

import asyncio
import os

from algajobs import Settings, create_runner
from algajobs.demo import all_completed, registry, run_demo


async def main() -> None:
    settings = Settings.load(runner_type="postgres", schema_name=os.environ.get("JOB_SCHEMA", "algajobs_demo"))
    async with create_runner(settings, registry) as runner:
        await runner.start()
        if not all_completed(await run_demo(runner)):
            raise SystemExit("demo: a job did not complete")


if __name__ == "__main__":
    asyncio.run(main())
