"""What a second gateway process adds, and what the shared rate limits cost: requests/s
and p50/p99 of an authorised `GET /v1/workspaces/{id}` through 2 gateway processes ÷
through 1, in the same run, with the same total connections; first with each
process keeping its own rate buckets, then with the buckets shared in PostgreSQL
(generous limits: every request draws a token, none is refused).

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own process (`bench.system`), plus three more gateway processes beside the
first: two with the limits per process, two with them shared. The load is wrk
(`/usr/bin/wrk`): one at `--connections` against one gateway, or two at half as many
at once, one per gateway; an aiohttp load loop in this process where wrk is missing.
Each configuration is measured in every round, in turn. The goal: 2 ÷ 1 >= 1.5.

The machine's CPUs are shared by the load, the gateways, identity (which answers
every request), PostgreSQL and Kafka: next to each configuration the benchmark
prints where the CPU went meanwhile (seconds of CPU per second of load, from
/proc), including what the rest of the machine used. `--profile DIR` records each
gateway with py-spy during the last round's two-gateway runs (py-spy must be
installed: `.venv/bin/pip install py-spy`) and prints where their samples were.

Run: `.venv/bin/python -m bench.gateway_processes`; `--quick` for one short round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.gateway_latency import load
from bench.load import WRK, Measured, run_wrk
from bench.profiling import cpu_spent, recording
from bench.system import NO_RATE_LIMITS, as_person, running_system
from infra.sandbox import Sandbox, sandbox
from shared.settings import ServiceName
from shared.testing import ServiceProcess

GOAL = 1.5
WARM_UP_SECONDS = 2.0


@dataclass(frozen=True)
class Configuration:
    name: str
    gateways: list[ServiceProcess]


@dataclass
class Result:
    measured: list[Measured]
    """One per round: the gateways' loads added up (p50/p99: the slower load's)."""
    cpu: defaultdict[str, float]
    """CPU seconds by part of the system, over every round."""

    @property
    def per_second(self) -> float:
        return sum(one.requests for one in self.measured) / sum(
            one.seconds for one in self.measured
        )

    def percentile_ms(self, percent: int) -> float:
        values = [one.p50_ms if percent == 50 else one.p99_ms for one in self.measured]
        return sorted(values)[len(values) // 2]


# --- Load -------------------------------------------------------------------------


async def run_aiohttp(
    url: str, headers: dict[str, str], connections: int, seconds: float
) -> Measured:
    run = await load(url, lambda: headers, target=url, concurrency=connections, seconds=seconds)
    return Measured(
        run.requests, run.seconds, run.percentile_ms(50), run.percentile_ms(99), run.errors
    )


async def measure_once(
    configuration: Configuration,
    path: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> Measured:
    """Every gateway of `configuration` loaded at once, the connections split between them."""
    each = connections // len(configuration.gateways)
    send = run_wrk if WRK else run_aiohttp
    if WRK:  # the aiohttp loop warms up on its own
        await asyncio.gather(
            *(
                send(gateway.url + path, headers, each, WARM_UP_SECONDS)
                for gateway in configuration.gateways
            )
        )
    loads = await asyncio.gather(
        *(send(gateway.url + path, headers, each, seconds) for gateway in configuration.gateways)
    )
    return Measured(
        requests=sum(one.requests for one in loads),
        seconds=seconds,
        p50_ms=max(one.p50_ms for one in loads),
        p99_ms=max(one.p99_ms for one in loads),
        errors=sum(one.errors for one in loads),
        unanswered=sum(one.unanswered for one in loads),
    )


# --- Profile ----------------------------------------------------------------------


_AREAS = [
    ("shared rate limits (SQL, batching)", ("shared_ratelimit", "rate_buckets")),
    ("SQLAlchemy / asyncpg", ("sqlalchemy", "asyncpg")),
    ("forwarding (aiohttp client)", ("aiohttp",)),
    ("HTTP server (uvicorn, h11/httptools)", ("uvicorn", "httptools", "h11")),
    ("Starlette / FastAPI", ("starlette", "fastapi")),
    ("principal signing, tokens", ("principal.py", "jwt", "auth.py", "hmac", "hashlib")),
    ("logging", ("logging",)),
    ("Kafka client", ("aiokafka", "faststream")),
    ("gateway code", ("services/gateway",)),
    ("event loop (uvloop's own code: I/O, callbacks)", ("asyncio", "uvloop")),
]
_WAITING = ("concurrent/futures/thread.py", "threading.py")
"""Innermost frames of threads that wait for work (py-spy counts them as active)."""


def summarise_profiles(folder: Path) -> None:
    """Samples by area (the innermost frame that names one, so that a sample counts
    once) and the busiest innermost frames, leaving out threads that wait for work."""
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for file in sorted(folder.glob("gateway-*.txt")):
        for line in file.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            frames = stack.split(";")
            if any(mark in frames[-1] for mark in _WAITING):
                continue
            total += count
            leaves[frames[-1]] += count
            for frame in reversed(frames):
                area = next(
                    (name for name, marks in _AREAS if any(mark in frame for mark in marks)), None
                )
                if area is not None:
                    areas[area] += count
                    break
            else:
                areas["other"] += count
    if not total:
        print("\nno samples recorded")
        return
    print(f"\npy-spy, both gateways of the last round's two-gateway runs ({total} samples):")
    for area, count in areas.most_common():
        print(f"  {count / total:6.1%}  {area}")
    print("busiest innermost frames:")
    for frame, count in leaves.most_common(12):
        print(f"  {count / total:6.1%}  {frame[:110]}")


# --- The run ----------------------------------------------------------------------


def another_gateway(first: ServiceProcess, *, shared: bool) -> ServiceProcess:
    return first.another().spawn(
        extra_environment={"ATRIUM_SHARED_RATE_LIMITS": str(shared).lower()}
    )


async def prepare(env: Sandbox, gateways: list[ServiceProcess]) -> tuple[str, dict[str, str]]:
    """An account and its owner's token; its first reads through every gateway."""
    owner = as_person(f"owner.{uuid.uuid4().hex[:6]}@example.com", env.settings)
    async with httpx.AsyncClient(timeout=15) as client:
        root = await client.post(
            f"{gateways[0].url}/v1/workspaces", json={"name": "Bench"}, headers=owner
        )
        root.raise_for_status()
        path = f"/v1/workspaces/{root.json()['id']}"
        for gateway in gateways:
            (await client.get(gateway.url + path, headers=owner)).raise_for_status()
    await asyncio.sleep(2)  # the membership reaches the projections
    return path, owner


async def measure(
    env: Sandbox,
    configurations: list[Configuration],
    parts: dict[str, list[int]],
    args: argparse.Namespace,
) -> list[Result]:
    path, owner = await prepare(env, configurations[1].gateways + configurations[3].gateways)
    results = [Result([], defaultdict(float)) for _ in configurations]
    for round_number in range(args.rounds):
        last = round_number == args.rounds - 1
        for configuration, result in zip(configurations, results, strict=True):
            profile = args.profile if last and len(configuration.gateways) == 2 else None
            folder = (
                None
                if profile is None
                else profile / configuration.name.replace(" ", "-").replace(",", "")
            )
            with (
                cpu_spent(parts, result.cpu),
                recording(
                    {f"gateway-{gateway.port}": gateway.pid for gateway in configuration.gateways},
                    args.seconds + WARM_UP_SECONDS,
                    folder,
                ),
            ):
                result.measured.append(
                    await measure_once(configuration, path, owner, args.connections, args.seconds)
                )
    return results


def report(
    configurations: list[Configuration], results: list[Result], args: argparse.Namespace
) -> None:
    print()
    print(
        f"{'GET /v1/workspaces/{id}':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'unanswered':>12}"
    )
    for configuration, result in zip(configurations, results, strict=True):
        errors = sum(one.errors for one in result.measured)
        unanswered = sum(one.unanswered for one in result.measured)
        print(
            f"{configuration.name:<34}{result.per_second:>9.0f}{result.percentile_ms(50):>9.2f}"
            f"{result.percentile_ms(99):>9.2f}{errors:>9}{unanswered:>12}"
        )
    one_off, two_off, one_on, two_on = (result.per_second for result in results)
    print(f"\n2 gateways ÷ 1, limits per process: {_ratio(two_off, one_off)} (goal >= {GOAL})")
    print(f"2 gateways ÷ 1, shared limits:      {_ratio(two_on, one_on)}")
    print(f"shared ÷ per process, 1 gateway:    {_ratio(one_on, one_off)}")
    print(f"shared ÷ per process, 2 gateways:   {_ratio(two_on, two_off)}")
    print(f"\nCPU seconds per second of load, by part (of the machine's {os.cpu_count()} CPUs):")
    names = sorted(
        {part for result in results for part in result.cpu},
        key=lambda part: part == "rest of the machine",
    )
    print(f"{'':<34}" + "".join(f"{name[:12]:>13}" for name in names))
    for configuration, result in zip(configurations, results, strict=True):
        seconds = sum(one.seconds + (WARM_UP_SECONDS if WRK else 0) for one in result.measured)
        print(
            f"{configuration.name:<34}"
            + "".join(f"{result.cpu[name] / seconds:>13.2f}" for name in names)
        )
    load = "wrk, one thread per gateway" if WRK else "aiohttp workers in this process"
    print(
        f"\nload: {load}, {args.connections} connections in all, {args.rounds} rounds of "
        f"{args.seconds:.0f}s per configuration (each after {WARM_UP_SECONDS:.0f}s of warm-up); "
        "p50/p99 of two gateways: the slower one's; medians over rounds"
    )


def _ratio(measured: float, baseline: float) -> str:
    return f"{measured / baseline:.2f}" if baseline else "n/a (nothing answered)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of 3 seconds")
    parser.add_argument("--seconds", type=float, default=8.0, help="per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profiles go here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(
            env.environment,
            Path(logs),
            overrides=NO_RATE_LIMITS,
            # One process on the system's gateway address: each measured process is reached
            # on an address of its own.
            processes={ServiceName.GATEWAY: 1},
        ) as running,
    ):
        first = running[ServiceName.GATEWAY]
        others = [
            another_gateway(first, shared=False),
            another_gateway(first, shared=True),
            another_gateway(first, shared=True),
        ]
        try:
            for gateway in others:
                gateway.wait_ready(timeout=120)
            configurations = [
                Configuration("1 gateway, limits per process", [first]),
                Configuration("2 gateways, limits per process", [first, others[0]]),
                Configuration("1 gateway, shared limits", [others[1]]),
                Configuration("2 gateways, shared limits", [others[1], others[2]]),
            ]
            postmaster = int((env.postgres.data_dir / "postmaster.pid").read_text().split()[0])
            kafka = env.kafka.pid()
            parts = {
                "gateways": [gateway.pid for gateway in [first, *others]],
                "identity": [running[ServiceName.IDENTITY].pid],
                "other services": [
                    running[service].pid
                    for service in (ServiceName.BILLING, ServiceName.ASSETS, ServiceName.APIKEYS)
                ],
                "postgres": [postmaster],
                "kafka": [] if kafka is None else [kafka],
                "load (wrk)": [os.getpid()],
            }
            results = asyncio.run(measure(env, configurations, parts, args))
        finally:
            for gateway in others:
                gateway.stop()
    report(configurations, results, args)
    if args.profile is not None:
        for folder in sorted(args.profile.glob("*")):
            print(f"\n[{folder.name}]", end="")
            summarise_profiles(folder)


if __name__ == "__main__":
    main()
