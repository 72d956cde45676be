"""Failover figures with default settings, on a real dev server that gets SIGKILLed.

- time from Temporal's death to the circuit opening, under a steady stream of
  ``schedule_job`` calls (one every 10 ms);
- ``schedule_job`` latency p50/p99 while the circuit is open (PostgreSQL only);
- bursts of 200 and 1,000 concurrent ``schedule_job`` calls on a healthy
  cluster: the share routed to PostgreSQL (a busy cluster is not a dead one)
  and whether the circuit stayed closed.

Run: ``python bench/failover.py [--samples 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import subprocess
import tempfile
import time
import uuid

from temporalio.client import Client

from algajobs import FailoverRunner, JobContext, JobRegistry, RunnerType, Settings
from algajobs.circuit import CircuitState
from algajobs.testing import temporal_cli_path

DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def start_server(port: int, folder: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [temporal_cli_path(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
         "--metrics-port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    for _ in range(150):
        try:
            client = await Client.connect(f"127.0.0.1:{port}")
            await client.service_client.check_health()
            return proc
        except Exception:
            await asyncio.sleep(0.2)
    raise TimeoutError("dev server did not start")


async def main() -> None:
    parser = argparse.ArgumentParser(description="failover timings with default circuit settings")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    registry = JobRegistry()

    @registry.handler("noop")
    async def noop(ctx: JobContext, data: dict[str, str]) -> None:
        return None

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = await start_server(port, folder)
        settings = Settings.load(
            database_url=DSN,
            schema_name=f"aj_bench_{uuid.uuid4().hex[:8]}",
            temporal_address=f"127.0.0.1:{port}",
        )
        print(
            f"defaults: threshold {settings.circuit_failure_threshold}, call timeout "
            f"{settings.circuit_call_timeout.total_seconds()}s, cool-down {settings.circuit_cool_down.total_seconds()}s"
        )
        try:
            bursts = []
            for size in (200, 1000):
                async with FailoverRunner(settings, registry) as runner:  # a fresh breaker per burst
                    bursts.append(await burst(runner, size))
            async with FailoverRunner(settings, registry) as runner:
                for _ in range(50):
                    await runner.schedule_job("noop", {}, tenant_id="bench")
                assert runner.circuit_state is CircuitState.CLOSED
                server.send_signal(signal.SIGKILL)
                server.wait()
                died = time.perf_counter()
                while runner.circuit_state is not CircuitState.OPEN:
                    await runner.schedule_job("noop", {}, tenant_id="bench")
                    await asyncio.sleep(0.01)
                opened = time.perf_counter() - died
                lat = []
                for _ in range(args.samples):
                    started = time.perf_counter()
                    await runner.schedule_job("noop", {}, tenant_id="bench")
                    lat.append((time.perf_counter() - started) * 1000)
                assert runner.circuit_state is CircuitState.OPEN
        finally:
            if server.poll() is None:
                server.kill()
    print(f"time from Temporal's death to circuit open: {opened * 1000:.0f} ms (target < 2000 ms)")
    print(f"schedule_job while open: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms (target p99 < 50 ms)")
    for line in bursts:
        print(line)


async def burst(runner: FailoverRunner, size: int) -> str:
    """Fire ``size`` concurrent calls at a healthy cluster; report the PostgreSQL share and the circuit."""
    timings: list[float] = []

    async def one() -> RunnerType:
        started = time.perf_counter()
        result = await runner.schedule_job("noop", {}, tenant_id="bench")
        timings.append((time.perf_counter() - started) * 1000)
        return result.runner_type

    started = time.perf_counter()
    engines = await asyncio.gather(*(one() for _ in range(size)))
    took = time.perf_counter() - started
    share = sum(e is RunnerType.POSTGRES for e in engines) / size
    state = runner.circuit_state
    return (
        f"burst of {size} on a healthy cluster: {share:.0%} to PostgreSQL, circuit {state}, "
        f"{took:.2f} s, call p50 {pct(timings, 50):.0f} ms, p99 {pct(timings, 99):.0f} ms (target: 0%, closed)"
    )


if __name__ == "__main__":
    asyncio.run(main())
