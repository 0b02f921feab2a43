"""What one address can do to the gateway: 20,000 half-open connections (each sends the
start of a request head and nothing more), then slow bodies, seen from another address
while they are held.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), every
service and the gateway each as its own process with the default settings (the
gateway's file-descriptor limit is this process's). The flood comes from 127.0.0.1,
from `--workers` processes (one process may hold only as many sockets as its own
file limit); the other client from 127.0.0.2, which reaches the gateway's 127.0.0.1
over loopback. It reports how long the flood took to open, how many connections the
gateway held, its open files, and the latency of `/readyz` and of an authenticated
`GET /v1/workspaces` from the other address before and during the flood; then how long
`--slow-bodies` requests whose body stops after a few bytes (from four addresses, so
that the per-address cap does not close them first) wait for their answer.

Run: `.venv/bin/python -m bench.edge_flood`; `--quick` floods 2,000 and sets the body
timeout to 3 seconds. The connections the gateway closes linger in the kernel's
TIME_WAIT for a minute afterwards, as after any such flood.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import resource
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

from bench.system import running_system
from infra.sandbox import sandbox
from shared.development_tokens import development_token
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, hold_half_open_connections, still_open

OTHER_ADDRESS = "127.0.0.2"
SLOW_BODY_ADDRESSES = ("127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5")
PROBES = 10


def hold(port: int, count: int, results: Connection) -> None:
    """A worker process: open `count` half-open connections, report, hold them until
    told to let go."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def flood() -> None:
        connections = await hold_half_open_connections("127.0.0.1", port, count)
        results.send(("opened", len(connections)))
        results.recv()  # "count"
        results.send(("held", still_open(connections)))
        results.recv()  # "let go"
        for connection in connections:
            connection.close()

    asyncio.run(flood())


async def probe(gateway: str, token: str) -> tuple[list[float], int]:
    """`PROBES` rounds of `/readyz` and an authenticated list from the other address:
    each round's slower latency, and how many requests failed."""
    latencies: list[float] = []
    failures = 0
    transport = httpx.AsyncHTTPTransport(local_address=OTHER_ADDRESS)
    async with httpx.AsyncClient(transport=transport, base_url=gateway, timeout=10) as client:
        for _ in range(PROBES):
            started = time.perf_counter()
            try:
                ready = await client.get("/readyz")
                listed = await client.get(
                    "/v1/workspaces", headers={"authorization": f"Bearer {token}"}
                )
                failures += (ready.status_code != 200) + (listed.status_code != 200)
            except httpx.HTTPError:
                failures += 2
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
    return latencies, failures


async def slow_bodies(port: int, settings: Settings, count: int) -> list[tuple[int, float]]:
    """Each from a caller of its own, so that no caller's rate limit answers first."""

    async def one(n: int) -> tuple[int, float]:
        token = development_token(f"slow-{n}@example.com", settings)
        head = (
            "POST /v1/workspaces HTTP/1.1\r\nhost: atrium\r\n"
            "content-type: application/json\r\ncontent-length: 100\r\n"
            f"authorization: Bearer {token}\r\n\r\n"
        ).encode()
        source = SLOW_BODY_ADDRESSES[n % len(SLOW_BODY_ADDRESSES)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        started = time.perf_counter()
        writer.write(head + b'{"name": ')
        try:
            answer = await asyncio.wait_for(reader.read(), timeout=300)
        finally:
            writer.close()
        status = int(answer.split()[1]) if answer else 0
        return status, time.perf_counter() - started

    return await asyncio.gather(*(one(n) for n in range(count)))


def open_files(service: ServiceProcess) -> int:
    """Files open in every process of the service."""
    return sum(1 for pid in service.pids for _ in Path(f"/proc/{pid}/fd").iterdir())


def describe(latencies: list[float]) -> str:
    return f"p50 {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"


def measure(
    settings: Settings, running: dict[ServiceName, ServiceProcess], args: argparse.Namespace
) -> None:
    gateway = running[ServiceName.GATEWAY]
    token = development_token("bench@example.com", settings)
    before, failed_before = asyncio.run(probe(gateway.url, token))
    print(
        f"gateway file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, "
        f"{open_files(gateway)} files open at rest"
    )
    print(f"127.0.0.2 before the flood:  {describe(before)}, {failed_before} failed")

    context = multiprocessing.get_context("spawn")
    pipes = []
    workers = []
    share = args.connections // args.workers
    started = time.perf_counter()
    for _ in range(args.workers):
        ours, theirs = context.Pipe()
        worker = context.Process(target=hold, args=(gateway.port, share, theirs))
        worker.start()
        pipes.append(ours)
        workers.append(worker)
    try:
        opened = sum(pipe.recv()[1] for pipe in pipes)
        flood_seconds = time.perf_counter() - started
        files_during = open_files(gateway)
        during, failed_during = asyncio.run(probe(gateway.url, token))
        for pipe in pipes:
            pipe.send("count")
        held = sum(pipe.recv()[1] for pipe in pipes)
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("let go")
        for worker in workers:
            worker.join(timeout=30)
    print(
        f"{opened} half-open connections from 127.0.0.1 opened in {flood_seconds:.1f}s; "
        f"the gateway held {held} of them, with {files_during} files open"
    )
    print(f"127.0.0.2 during the flood:  {describe(during)}, {failed_during} failed")

    if not args.slow_bodies:
        return
    answers = asyncio.run(slow_bodies(gateway.port, settings, args.slow_bodies))
    statuses = sorted({status for status, _ in answers})
    seconds = [elapsed for _, elapsed in answers]
    print(
        f"{args.slow_bodies} slow bodies answered {statuses} after "
        f"{min(seconds):.2f}-{max(seconds):.2f}s (body timeout {args.body_timeout:g}s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 connections, 3 s bodies")
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--slow-bodies", type=int, default=200)
    parser.add_argument(
        "--body-timeout", type=float, default=30.0, help="ATRIUM_HTTP_BODY_TIMEOUT_SECONDS"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.body_timeout = 2_000, 3.0
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(
            env.environment,
            Path(logs),
            overrides={"ATRIUM_HTTP_BODY_TIMEOUT_SECONDS": str(args.body_timeout)},
        ) as running,
    ):
        measure(env.settings, running, args)


if __name__ == "__main__":
    main()
