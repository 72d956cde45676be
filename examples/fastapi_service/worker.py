"""The worker process: runs the service's jobs until SIGTERM or Ctrl-C, then stops gracefully.

``python -m fastapi_service.worker`` does what ``algajobs worker --registry
fastapi_service.jobs:registry`` does, written out with the public API for
services that want their own process (extra setup, their own health port).
On SIGTERM it stops fetching, lets running jobs finish for
``JOB_SHUTDOWN_GRACE`` seconds and hands the rest back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from algajobs import Settings, create_runner

from .jobs import registry

log = logging.getLogger("fastapi_service.worker")


async def main() -> None:
    """Serve jobs until a stop signal arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = Settings.load()
    async with create_runner(settings, registry) as runner:
        await runner.start()
        log.info("worker started (schema %s, %s)", settings.schema_name, runner.mode)
        await stop.wait()
        log.info("stopping: running jobs get %ss", settings.shutdown_grace.total_seconds())
    log.info("worker stopped")  # leaving the block stopped the worker and closed the runner


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
