"""How soon a request made with a key is counted: the time from a key's request being
answered to apikeys' `GET .../api-keys/{key_id}/usage` counting it, next to the
request's own latency, in the same run.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own process (`bench.system`). Each trial sends one `GET /v1/workspaces/{id}`
with the key, then asks for the key's usage (as the workspace's Super Admin, whose own
requests are not the key's) every `--poll-ms` until it counts one request more. The
way there: the gateway's usage batch (flushed at least every second) on
`atrium.gateway.usage`, apikeys' consumer, its daily counts. The goal: p99 <= 2 s.

Run: `.venv/bin/python -m bench.apikey_usage_latency`; `--trials` (default 40).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.system import NO_RATE_LIMITS, as_person, percentile, running_system
from infra.sandbox import sandbox
from shared.settings import ServiceName, Settings

GOAL_SECONDS = 2.0
GIVE_UP_SECONDS = 10.0


async def counted_requests(client: httpx.AsyncClient, path: str, owner: dict[str, str]) -> int:
    today = datetime.now(UTC).date().isoformat()
    response = await client.get(path, params={"from": today, "to": today}, headers=owner)
    response.raise_for_status()
    return sum(int(day["requests"]) for day in response.json()["items"])


async def measure(
    gateway: str, settings: Settings, trials: int, poll_seconds: float
) -> tuple[list[float], list[float]]:
    owner = as_person(f"owner.{uuid.uuid4().hex[:6]}@example.com", settings)
    counted: list[float] = []
    answered: list[float] = []
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as client:
        root = await client.post("/v1/workspaces", json={"name": "Bench"}, headers=owner)
        root.raise_for_status()
        workspace = f"/v1/workspaces/{root.json()['id']}"
        key = await client.post(f"{workspace}/api-keys", json={"name": "Bench"}, headers=owner)
        key.raise_for_status()
        with_key = {"authorization": f"Bearer {key.json()['key']}"}
        usage = f"{workspace}/api-keys/{key.json()['id']}/usage"
        seen = await counted_requests(client, usage, owner)
        for _ in range(trials):
            sent = time.perf_counter()
            (await client.get(workspace, headers=with_key)).raise_for_status()
            done = time.perf_counter()
            answered.append(done - sent)
            while (now := await counted_requests(client, usage, owner)) <= seen:
                if time.perf_counter() - done > GIVE_UP_SECONDS:
                    msg = f"a request not counted after {GIVE_UP_SECONDS}s"
                    raise RuntimeError(msg)
                await asyncio.sleep(poll_seconds)
            counted.append(time.perf_counter() - done)
            if now != seen + 1:
                msg = f"one request counted as {now - seen}"
                raise RuntimeError(msg)
            seen = now
    return counted, answered


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--poll-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
    ):
        counted, answered = asyncio.run(
            measure(
                running[ServiceName.GATEWAY].url, env.settings, args.trials, args.poll_ms / 1000
            )
        )
    print(f"\n{args.trials} requests made with a key, ms:")
    print(f"{'':<44}{'p50':>9}{'p99':>9}{'max':>9}")
    for what, values in (
        ("answered → counted in apikeys' usage", counted),
        ("baseline: the request's own latency", answered),
    ):
        print(
            f"{what:<44}{percentile(values, 50) * 1000:>9.1f}"
            f"{percentile(values, 99) * 1000:>9.1f}{max(values) * 1000:>9.1f}"
        )
    print(
        f"\ncounted: p99 {percentile(counted, 99) * 1000:.0f} ms (goal <= "
        f"{GOAL_SECONDS * 1000:.0f} ms); usage polled every {args.poll_ms:.0f} ms; machine: "
        f"{os.cpu_count()} CPUs shared by the client, the services, PostgreSQL and Kafka"
    )


if __name__ == "__main__":
    main()
