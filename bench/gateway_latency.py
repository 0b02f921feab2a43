"""What the gateway costs: requests/s and latency of an authorised
`GET /v1/workspaces/{id}` through the gateway, the same request sent straight to
identity (with the signed principal the gateway would send), and a bare FastAPI
hello-world, in the same run on this machine.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each server
as its own process as in production (`python -m services.<name>.app`, uvicorn with
uvloop). The load comes from this process over loopback: `--concurrency` aiohttp
workers, each sending its next request when the previous one is answered, for
`--seconds` per target after a warm-up, in `--rounds` rounds that take the targets in
turn.

Run: `.venv/bin/python -m bench.gateway_latency`; `--quick` for a short run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

from bench.system import NO_RATE_LIMITS, running_system
from contracts.permissions import Role
from infra.processes import free_port
from infra.sandbox import sandbox
from shared.development_tokens import development_token, development_user_id
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.settings import ServiceName, Settings
from shared.testing import REPO, ServiceProcess

WARM_UP_SECONDS = 2.0
GOAL = 0.6
"""The gateway should keep at least this share of identity's own throughput."""


@dataclass(frozen=True)
class Run:
    target: str
    durations_ns: list[int]
    errors: int
    seconds: float

    @property
    def requests(self) -> int:
        return len(self.durations_ns)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, percent: int) -> float:
        cuts = statistics.quantiles(self.durations_ns, n=100, method="inclusive")
        return cuts[percent - 1] / 1e6


def combined(runs: list[Run]) -> Run:
    return Run(
        target=runs[0].target,
        durations_ns=[duration for run in runs for duration in run.durations_ns],
        errors=sum(run.errors for run in runs),
        seconds=sum(run.seconds for run in runs),
    )


async def load(
    url: str,
    headers: Callable[[], dict[str, str]],
    *,
    target: str,
    concurrency: int,
    seconds: float,
) -> Run:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def worker(until: float, durations: list[int], errors: list[int]) -> None:
            while time.perf_counter() < until:
                started = time.perf_counter_ns()
                async with client.get(url, headers=headers()) as response:
                    await response.read()
                    if response.status != 200:
                        errors.append(response.status)
                durations.append(time.perf_counter_ns() - started)

        warm_until = time.perf_counter() + WARM_UP_SECONDS
        await asyncio.gather(*(worker(warm_until, [], []) for _ in range(concurrency)))
        durations: list[int] = []
        errors: list[int] = []
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(worker(until, durations, errors) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Run(target, durations, len(errors), elapsed)


def serve_hello(port: int) -> None:
    """A bare FastAPI hello-world, served as the services are."""
    import uvicorn  # noqa: PLC0415 - only the hello-world process needs these
    from fastapi import FastAPI  # noqa: PLC0415

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


@contextlib.contextmanager
def hello_world() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.gateway_latency", "--serve-hello", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/hello"
    try:
        deadline = time.monotonic() + 90  # a busy machine starts it slowly
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                msg = "the hello-world server did not start"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


async def measure(
    settings: Settings,
    running: dict[ServiceName, ServiceProcess],
    hello_url: str,
    args: argparse.Namespace,
) -> list[list[Run]]:
    email = "bench@example.com"
    token = development_token(email, settings)
    gateway, identity = running[ServiceName.GATEWAY].url, running[ServiceName.IDENTITY].url
    async with httpx.AsyncClient(timeout=10) as client:
        created = await client.post(
            f"{gateway}/v1/workspaces",
            json={"name": "Bench"},
            headers={"authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
    workspace_id = uuid.UUID(created.json()["id"])
    path = f"/v1/workspaces/{workspace_id}"
    # The gateway learns of the membership from identity's event; let it arrive, so
    # that what is measured is the projection, not identity's read-your-writes answer.
    await asyncio.sleep(2)

    user_id = development_user_id(email)
    principal = Principal(
        user_id=user_id,
        email=email,
        email_verified=True,
        workspace_id=workspace_id,
        role=Role.SUPER_ADMIN,
    )

    def signed() -> dict[str, str]:
        # A principal is good for one request: signed for each, as the gateway does.
        return {
            PRINCIPAL_HEADER: sign_principal(
                principal, method="GET", target=path, body=b"", secret=settings.internal_secret
            )
        }

    common = {"concurrency": args.concurrency, "seconds": args.seconds}
    targets: list[tuple[str, str, Callable[[], dict[str, str]]]] = [
        ("FastAPI hello-world", hello_url, dict),
        ("identity directly", identity + path, signed),
        ("through the gateway", gateway + path, lambda: {"authorization": f"Bearer {token}"}),
    ]
    # Rounds interleave the targets, so that a change in the machine's other load
    # during the run weighs on all of them alike.
    rounds = [
        [await load(url, headers, target=name, **common) for name, url, headers in targets]
        for _ in range(args.rounds)
    ]
    return [list(by_target) for by_target in zip(*rounds, strict=True)]


def report(rounds_by_target: list[list[Run]], args: argparse.Namespace) -> None:
    runs = [combined(by_target) for by_target in rounds_by_target]
    print()
    print(
        f"{'GET /v1/workspaces/{id}':<28}{'requests':>10}{'req/s':>10}{'p50 ms':>10}"
        f"{'p99 ms':>10}{'errors':>8}"
    )
    for run in runs:
        print(
            f"{run.target:<28}{run.requests:>10}{run.per_second:>10.0f}"
            f"{run.percentile_ms(50):>10.2f}{run.percentile_ms(99):>10.2f}{run.errors:>8}"
        )
    direct, through = runs[1], runs[2]
    share = through.per_second / direct.per_second
    per_round = ", ".join(
        f"{gateway.per_second / identity.per_second:.2f}"
        for identity, gateway in zip(rounds_by_target[1], rounds_by_target[2], strict=True)
    )
    print()
    print(
        f"gateway/direct throughput: {share:.2f} (goal >= {GOAL}; by round: {per_round}); "
        f"added p50 latency: {through.percentile_ms(50) - direct.percentile_ms(50):.2f} ms"
    )
    print(
        f"load: {args.concurrency} concurrent aiohttp workers in one process, "
        f"{args.rounds} rounds of {args.seconds:.0f}s per target (each after "
        f"{WARM_UP_SECONDS:.0f}s of warm-up); machine: {os.cpu_count()} CPUs shared by the "
        "load, the servers, PostgreSQL and Kafka"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of 3 seconds")
    parser.add_argument("--seconds", type=float, default=5.0, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve-hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
        hello_world() as hello_url,
    ):
        runs = asyncio.run(measure(env.settings, running, hello_url, args))
    report(runs, args)


if __name__ == "__main__":
    main()
