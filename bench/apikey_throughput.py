"""What a key costs at the edge: gateway throughput and latency of
`GET /v1/workspaces/{id}/balances` with an API key, next to the same request with a
user token, at the same concurrency and for the same time, in the same run.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own process (`bench.system`), the gateway's per-caller budgets lifted (the key
has no `rate_limit`). The load is `bench.gateway_latency`'s: `--concurrency` aiohttp
workers in this process, in `--rounds` rounds that take the two callers in turn. The
goal: with a key ÷ with a token >= 0.9.

Run: `.venv/bin/python -m bench.apikey_throughput`; `--quick` for one short round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import httpx

from bench.gateway_latency import WARM_UP_SECONDS, Run, combined, load
from bench.system import NO_RATE_LIMITS, as_person, running_system
from infra.sandbox import sandbox
from shared.settings import ServiceName, Settings

GOAL = 0.9


async def measure(gateway: str, settings: Settings, args: argparse.Namespace) -> list[list[Run]]:
    owner = as_person(f"owner.{uuid.uuid4().hex[:6]}@example.com", settings)
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as client:
        root = await client.post("/v1/workspaces", json={"name": "Bench"}, headers=owner)
        root.raise_for_status()
        path = f"/v1/workspaces/{root.json()['id']}/balances"
        key = await client.post(
            f"/v1/workspaces/{root.json()['id']}/api-keys", json={"name": "Bench"}, headers=owner
        )
        key.raise_for_status()
        with_key = {"authorization": f"Bearer {key.json()['key']}"}
        for headers in (owner, with_key):
            (await client.get(path, headers=headers)).raise_for_status()
    # Let the membership and the key reach the gateway's projections, so that what is
    # measured is the projection, not the read-your-writes path.
    await asyncio.sleep(2)
    callers = [("user token", lambda: owner), ("API key", lambda: with_key)]
    common = {"concurrency": args.concurrency, "seconds": args.seconds}
    rounds = [
        [await load(gateway + path, headers, target=name, **common) for name, headers in callers]
        for _ in range(args.rounds)
    ]
    return [list(by_caller) for by_caller in zip(*rounds, strict=True)]


def report(rounds_by_caller: list[list[Run]], args: argparse.Namespace) -> None:
    runs = [combined(by_caller) for by_caller in rounds_by_caller]
    print()
    print(
        f"{'GET .../balances':<20}{'requests':>10}{'req/s':>10}{'p50 ms':>10}"
        f"{'p99 ms':>10}{'errors':>8}"
    )
    for run in runs:
        print(
            f"{run.target:<20}{run.requests:>10}{run.per_second:>10.0f}"
            f"{run.percentile_ms(50):>10.2f}{run.percentile_ms(99):>10.2f}{run.errors:>8}"
        )
    token, key = runs
    per_round = ", ".join(
        f"{k.per_second / t.per_second:.2f}"
        for t, k in zip(rounds_by_caller[0], rounds_by_caller[1], strict=True)
    )
    print(
        f"\nkey/token throughput: {key.per_second / token.per_second:.2f} (goal >= {GOAL}; "
        f"by round: {per_round})"
    )
    print(
        f"load: {args.concurrency} concurrent aiohttp workers in one process, {args.rounds} "
        f"rounds of {args.seconds:.0f}s per caller (each after {WARM_UP_SECONDS:.0f}s of "
        f"warm-up); machine: {os.cpu_count()} CPUs shared by the load, the services, "
        "PostgreSQL and Kafka"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of 3 seconds")
    parser.add_argument("--seconds", type=float, default=5.0, help="per caller and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
    ):
        runs = asyncio.run(measure(running[ServiceName.GATEWAY].url, env.settings, args))
    report(runs, args)


if __name__ == "__main__":
    main()
