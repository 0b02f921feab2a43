"""What this machine's edge does next to what a bare web server does: requests/s and
p50/p99 at 32 connections, in one run with wrk, of

- a bare FastAPI hello-world under uvicorn (the baseline of every ratio);
- an authorized `GET /v1/workspaces/{id}` through the gateway, with the rate limits out
  of the way (`NO_RATE_LIMITS`: each process keeps its own buckets, no round trip);
- the same GET through gateways that share their rate buckets in PostgreSQL (generous
  limits: every request draws a token, none is refused), as operators run them;
- `POST /v1/workspaces/{id}/spend` through the gateway (one image each, a fresh
  `Idempotency-Key` per request, from a Lua script wrk runs), spread over
  `--workspaces` accounts (one each per few connections) that bought plenty of
  credits first: the edge and billing's handler, not one account's lock.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own processes as `bench.system.running_system` starts them (the gateway as
two). Rounds take the targets in turn, each after a warm-up, so that the machine's
other load weighs on all of them alike; figures are over all rounds.

Goals: authorized GET ÷ hello-world >= 0.3; spend ÷ hello-world >= 0.15; spend p99
<= 50 ms.

Run: `.venv/bin/python -m bench.edge_throughput`; `--quick` for one short round;
`--profile DIR` records the gateway and identity processes with py-spy during the
last round (`.venv/bin/pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import results
from bench.gateway_latency import hello_world
from bench.load import Measured, run_wrk
from bench.profiling import cpu_spent, recording
from bench.system import NO_RATE_LIMITS, as_person, running_system
from infra.processes import free_port
from infra.sandbox import Sandbox, sandbox
from shared.settings import ServiceName
from shared.testing import ServiceProcess

GET_GOAL = 0.3
SPEND_GOAL = 0.15
SPEND_P99_GOAL_MS = 50.0
WARM_UP_SECONDS = 2.0
CREDITS_PER_ACCOUNT = 100_000_000
"""Far more than the run can spend (an image costs 2)."""


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    script: Path | None = None
    profiled: list[int] = field(default_factory=list)
    """The processes py-spy records while this target is loaded (`--profile`)."""

    @property
    def file_name(self) -> str:
        return self.name.replace(" ", "-").replace("/", "").replace(",", "")


def spend_script(folder: Path, paths: list[str], headers: dict[str, str]) -> Path:
    """wrk's Lua script for spends: each request to the next account's spend path, with
    an `Idempotency-Key` of its own (a run's prefix and a counter)."""
    run = uuid.uuid4().hex[:12]
    body = json.dumps({"operation": "image_creation", "quantity": 1})
    lines = [
        f"local paths = {{{', '.join(json.dumps(path + '/spend') for path in paths)}}}",
        "local sent = 0",
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["content-type"] = "application/json"',
        *(
            f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}"
            for name, value in headers.items()
        ),
        "request = function()",
        "  sent = sent + 1",
        f'  wrk.headers["idempotency-key"] = "{run}-" .. sent',
        "  return wrk.format(nil, paths[sent % #paths + 1])",
        "end",
    ]
    script = folder / "spend.lua"
    script.write_text("\n".join(lines) + "\n")
    return script


async def prepare_accounts(
    env: Sandbox, gateways: list[ServiceProcess], count: int
) -> tuple[dict[str, str], list[str]]:
    """An owner's headers and the paths of `count` accounts of theirs, each with
    `CREDITS_PER_ACCOUNT` generative credits; read and spent in once through every
    gateway, so that each has what it learns on first use."""
    owner = as_person(f"owner.{uuid.uuid4().hex[:6]}@example.com", env.settings)
    paths = []
    async with httpx.AsyncClient(timeout=30) as client:
        for number in range(count):
            root = await client.post(
                f"{gateways[0].url}/v1/workspaces", json={"name": f"Edge {number}"}, headers=owner
            )
            root.raise_for_status()
            paths.append(f"/v1/workspaces/{root.json()['id']}")
        for path in paths:
            for attempt in range(50):
                bought = await client.post(
                    f"{gateways[0].url}{path}/purchases",
                    json={"pool": "generative_credits", "quantity": CREDITS_PER_ACCOUNT},
                    headers={**owner, "idempotency-key": f"purchase-{path}"},
                )
                if bought.status_code != 503 or attempt == 49:  # billing not told yet
                    break
                await asyncio.sleep(0.2)
            bought.raise_for_status()
        await asyncio.sleep(2)  # the memberships reach every gateway's projection
        for gateway in gateways:
            for path in paths:
                (await client.get(gateway.url + path, headers=owner)).raise_for_status()
                spent = await client.post(
                    f"{gateway.url}{path}/spend",
                    json={"operation": "image_creation", "quantity": 1},
                    headers={**owner, "idempotency-key": str(uuid.uuid4())},
                )
                spent.raise_for_status()
    return owner, paths


async def measure(
    targets: list[Target],
    parts: dict[str, list[int]],
    cpu: list[defaultdict[str, float]],
    args: argparse.Namespace,
) -> list[list[Measured]]:
    """Each target's rounds; `cpu` gets the CPU seconds each of the system's `parts`
    spent while the target was measured."""
    by_target: list[list[Measured]] = [[] for _ in targets]
    for round_number in range(args.rounds):
        last = round_number == args.rounds - 1
        for target, measured, spent in zip(targets, by_target, cpu, strict=True):
            await run_wrk(
                target.url, target.headers, args.connections, WARM_UP_SECONDS, script=target.script
            )
            with (
                cpu_spent(parts, spent),
                recording(
                    {f"{target.file_name}-{pid}": pid for pid in target.profiled},
                    args.seconds,
                    args.profile if last else None,
                ),
            ):
                measured.append(
                    await run_wrk(
                        target.url,
                        target.headers,
                        args.connections,
                        args.seconds,
                        script=target.script,
                    )
                )
    return by_target


def summed(rounds: list[Measured]) -> Measured:
    """Every round's requests; p50/p99: the median round's."""

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return Measured(
        requests=sum(one.requests for one in rounds),
        seconds=sum(one.seconds for one in rounds),
        p50_ms=median([one.p50_ms for one in rounds]),
        p99_ms=median([one.p99_ms for one in rounds]),
        errors=sum(one.errors for one in rounds),
        unanswered=sum(one.unanswered for one in rounds),
    )


def report(
    targets: list[Target],
    by_target: list[list[Measured]],
    cpu: list[defaultdict[str, float]],
    args: argparse.Namespace,
) -> dict[str, object]:
    overall = [summed(rounds) for rounds in by_target]
    hello = overall[0].per_second
    print()
    print(
        f"{'at ' + str(args.connections) + ' connections':<40}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'÷ hello':>9}{'non-2xx':>9}{'unanswered':>12}"
    )
    figures: dict[str, object] = {}
    for target, measured in zip(targets, overall, strict=True):
        ratio = measured.per_second / hello if hello else 0.0
        print(
            f"{target.name:<40}{measured.per_second:>9.0f}{measured.p50_ms:>9.2f}"
            f"{measured.p99_ms:>9.2f}{ratio:>9.3f}{measured.errors:>9}{measured.unanswered:>12}"
        )
        figures[target.name] = {
            "per_second": round(measured.per_second, 1),
            "p50_ms": measured.p50_ms,
            "p99_ms": measured.p99_ms,
            "ratio_to_hello_world": round(ratio, 4),
            "non_2xx": measured.errors,
            "unanswered": measured.unanswered,
            "by_round_per_second": [
                round(one.per_second, 1) for one in by_target[targets.index(target)]
            ],
        }
    get, get_shared, spend = overall[1], overall[2], overall[3]
    goals = {
        "authorized GET ÷ hello-world": (
            get.per_second / hello,
            f">= {GET_GOAL}",
            get.per_second / hello >= GET_GOAL,
        ),
        "GET, shared limits ÷ hello-world": (get_shared.per_second / hello, "(report)", None),
        "spend ÷ hello-world": (
            spend.per_second / hello,
            f">= {SPEND_GOAL}",
            spend.per_second / hello >= SPEND_GOAL,
        ),
        "spend p99 ms": (
            spend.p99_ms,
            f"<= {SPEND_P99_GOAL_MS:.0f}",
            spend.p99_ms <= SPEND_P99_GOAL_MS,
        ),
    }
    print()
    for name, (value, goal, met) in goals.items():
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<36}{value:>9.3f}  goal {goal:<8} {verdict}")
    print(
        f"\nload: wrk, one thread, {args.connections} connections, {args.rounds} rounds of "
        f"{args.seconds:.0f}s per target (each after {WARM_UP_SECONDS:.0f}s of warm-up); "
        f"spends spread over {args.workspaces} accounts; p50/p99: the median round's"
    )
    names = sorted(
        {part for spent in cpu for part in spent}, key=lambda part: part == "rest of the machine"
    )
    print("\nCPU ms per request, by part (what the machine's other load cannot skew much):")
    print(f"{'':<40}" + "".join(f"{name[:11]:>12}" for name in names))
    for target, measured, spent in zip(targets, overall, cpu, strict=True):
        per_request = {
            name: 1000 * spent[name] / measured.requests if measured.requests else 0.0
            for name in names
        }
        print(f"{target.name:<40}" + "".join(f"{per_request[name]:>12.2f}" for name in names))
        figures[target.name]["cpu_ms_per_request"] = {  # type: ignore[index]
            name: round(value, 3) for name, value in per_request.items()
        }
    figures["goals"] = {
        name: {"value": round(value, 4), "goal": goal, "met": met}
        for name, (value, goal, met) in goals.items()
    }
    figures["load"] = {
        "tool": "wrk -t1",
        "connections": args.connections,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "spend_accounts": args.workspaces,
    }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round of 4 seconds")
    parser.add_argument("--seconds", type=float, default=8.0, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workspaces", type=int, default=8, help="accounts the spends go to")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profiles go here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 4.0, 1
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-") as scratch,
        running_system(env.environment, Path(scratch), overrides=NO_RATE_LIMITS) as running,
        hello_world() as hello_url,
    ):
        gateway = running[ServiceName.GATEWAY]
        shared_limits = ServiceProcess(
            ServiceName.GATEWAY,
            port=free_port(),
            environment=gateway.environment,
            log_dir=Path(scratch),
            processes=len(gateway.pids),
        ).start(extra_environment={"ATRIUM_SHARED_RATE_LIMITS": "true"})
        try:
            owner, paths = asyncio.run(
                prepare_accounts(env, [gateway, shared_limits], args.workspaces)
            )
            behind = [
                *gateway.pids,
                running[ServiceName.IDENTITY].pid,
                running[ServiceName.BILLING].pid,
            ]
            targets = [
                Target("FastAPI hello-world", hello_url),
                Target("GET workspace via gateway", gateway.url + paths[0], owner, profiled=behind),
                Target(
                    "GET workspace, shared limits",
                    shared_limits.url + paths[0],
                    owner,
                    profiled=[*shared_limits.pids],
                ),
                Target(
                    "spend via gateway",
                    gateway.url,
                    script=spend_script(Path(scratch), paths, owner),
                    profiled=behind,
                ),
            ]
            postmaster = int((env.postgres.data_dir / "postmaster.pid").read_text().split()[0])
            parts = {
                "gateway": [*gateway.pids, *shared_limits.pids],
                "identity": running[ServiceName.IDENTITY].pids,
                "billing": running[ServiceName.BILLING].pids,
                "postgres": [postmaster],
                "wrk": [os.getpid()],
            }
            cpu: list[defaultdict[str, float]] = [defaultdict(float) for _ in targets]
            by_target = asyncio.run(measure(targets, parts, cpu, args))
        finally:
            shared_limits.stop()
    figures = report(targets, by_target, cpu, args)
    results.save("edge_throughput", figures, quick=args.quick)


if __name__ == "__main__":
    main()
