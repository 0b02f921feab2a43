"""How soon every gateway process refuses a removed member: two gateway processes,
the member added and then removed through one of them (each in turn), and from the
removal's 204 on, both polled at once, one request after another, until each answers
404. What is polled is the workspace's balances, which billing answers on the
gateway's word (identity, asked for the workspace itself, would refuse a removed
member on its own). The process that served the removal is the baseline; the other learns of it
only from the notification that the consuming process's write sends every process
(`services/gateway/projection_changes.py`). The goal: p99 <= 1 s on both.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own process (`bench.system`), plus a second gateway process on its own port,
measured once the gateways' consumer group has settled with both.

Run: `.venv/bin/python -m bench.access_propagation`; `--trials` (default 50).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.system import NO_RATE_LIMITS, Person, percentile, running_system
from infra.sandbox import sandbox
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, eventually, settled_consumers

GOAL_SECONDS = 1.0
GIVE_UP_SECONDS = 10.0
GATEWAY_GROUP = f"atrium.{ServiceName.GATEWAY.value}"
BALANCES = "/balances"
"""Answered by billing on the gateway's word: a 404 there is the gateway's refusal."""


@dataclass
class Refusal:
    seconds: float
    requests: int


@dataclass
class Removals:
    """Per trial, how soon each process refused the removed member."""

    serving: list[Refusal] = field(default_factory=list)
    """The process the removal went through."""
    other: list[Refusal] = field(default_factory=list)


class RemovalTrials:
    """Members added to one account and removed again, through two gateway processes
    in turn."""

    def __init__(
        self, client: httpx.AsyncClient, gateways: tuple[str, str], settings: Settings
    ) -> None:
        self.client = client
        self.gateways = gateways
        self.settings = settings
        self.owner = Person.new("owner", settings)
        self.root_id = ""
        self.removals = Removals()

    async def open(self) -> None:
        root = await self.created(self.gateways[0], "/v1/workspaces", {"name": "Two"}, self.owner)
        self.root_id = root["id"]

    async def created(
        self, gateway: str, path: str, body: dict[str, Any], who: Person
    ) -> dict[str, Any]:
        response = await self.client.post(f"{gateway}{path}", json=body, headers=who.headers)
        if response.status_code != 201:
            msg = f"POST {path}: {response.status_code} {response.text}"
            raise RuntimeError(msg)
        answer: dict[str, Any] = response.json()
        return answer

    async def joined(self, gateway: str, workspace_id: str, owner: Person) -> Person:
        """A new member, invited by `owner` and accepting, both through `gateway`."""
        member = Person.new("member", self.settings)
        invitation = await self.created(
            gateway,
            f"/v1/workspaces/{workspace_id}/invitations",
            {"email": member.email, "role": "viewer"},
            owner,
        )
        accepted = await self.client.post(
            f"{gateway}/v1/invitations/{invitation['id']}/accept", headers=member.headers
        )
        if accepted.status_code != 200:
            raise RuntimeError(accepted.text)
        return member

    async def status(self, gateway: str, workspace_id: str, who: Person, what: str = "") -> int:
        """The status of `GET /v1/workspaces/{workspace_id}{what}` for `who`."""
        response = await self.client.get(
            f"{gateway}/v1/workspaces/{workspace_id}{what}", headers=who.headers
        )
        return response.status_code

    async def remove(self, trial: int) -> None:
        """One trial: a member added through one process, admitted by both, removed
        through the first; then both polled until they refuse."""
        serving, other = self.gateways[trial % 2], self.gateways[1 - trial % 2]
        member = await self.joined(serving, self.root_id, self.owner)
        for gateway in (other, serving):
            if (admitted := await self.status(gateway, self.root_id, member, BALANCES)) != 200:
                msg = f"{gateway} does not admit a new member: {admitted}"
                raise RuntimeError(msg)
        removed = await self.client.delete(
            f"{serving}/v1/workspaces/{self.root_id}/members/{member.user_id}",
            headers=self.owner.headers,
        )
        if removed.status_code != 204:
            raise RuntimeError(removed.text)
        since = time.perf_counter()
        here, there = await asyncio.gather(
            self.refused(serving, member, since), self.refused(other, member, since)
        )
        self.removals.serving.append(here)
        self.removals.other.append(there)

    async def refused(self, gateway: str, member: Person, since: float) -> Refusal:
        requests = 0
        while True:
            status = await self.status(gateway, self.root_id, member, BALANCES)
            requests += 1
            took = time.perf_counter() - since
            if status == 404:
                return Refusal(took, requests)
            if status != 200 or took > GIVE_UP_SECONDS:
                msg = f"{gateway} still answers {status} to a removed member after {took:.1f} s"
                raise RuntimeError(msg)


@contextlib.asynccontextmanager
async def another_gateway(
    first: ServiceProcess, settings: Settings
) -> AsyncIterator[ServiceProcess]:
    """A second gateway process beside `first`, with its environment, on a port of its
    own, yielded once it consumes its share of the events (the gateways' consumer group
    has settled with both)."""
    kafka = settings.kafka_admin()
    alone = await eventually(
        lambda: settled_consumers(kafka, GATEWAY_GROUP), timeout=60, what="the gateways' group"
    )
    second = first.another().spawn()
    try:
        # It answers once it has joined the group; on a loaded machine that takes a while.
        await asyncio.to_thread(second.wait_ready, timeout=120)

        # `first` may be several processes on one address, each a member per subscription.
        with_second = alone + alone // len(first.pids)

        async def settled_with_both() -> bool | None:
            settled = await settled_consumers(kafka, GATEWAY_GROUP)
            return True if settled == with_second else None

        await eventually(settled_with_both, timeout=60, what="the group to take the second")
        yield second
    finally:
        second.stop()


async def measure(first: ServiceProcess, settings: Settings, trials: int) -> Removals:
    async with (
        another_gateway(first, settings) as second,
        httpx.AsyncClient(timeout=15) as client,
    ):
        removals = RemovalTrials(client, (first.url, second.url), settings)
        await removals.open()
        for trial in range(trials):
            await removals.remove(trial)
    return removals.removals


def report(removals: Removals) -> None:
    """A row per process, and one for how far the other process trailed the serving one
    in the same trial (what the notification adds)."""
    print(f"{'a member removed (204) → first 404, ms':<44}{'p50':>9}{'p99':>9}{'max':>9}")
    rows = (
        ("baseline: the process that served it", removals.serving),
        ("the other process", removals.other),
    )
    for name, refusals in rows:
        seconds = [refusal.seconds for refusal in refusals]
        requests = sum(refusal.requests for refusal in refusals) / len(refusals)
        print(
            f"{name:<44}{percentile(seconds, 50) * 1000:>9.1f}"
            f"{percentile(seconds, 99) * 1000:>9.1f}{max(seconds) * 1000:>9.1f}"
            f"  ({requests:.1f} requests on average)"
        )
    trailing = [
        other.seconds - serving.seconds
        for serving, other in zip(removals.serving, removals.other, strict=True)
    ]
    print(
        f"{'the other minus the serving, same trial':<44}"
        f"{percentile(trailing, 50) * 1000:>9.1f}{percentile(trailing, 99) * 1000:>9.1f}"
        f"{max(trailing) * 1000:>9.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args(argv)
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
        removals = asyncio.run(measure(running[ServiceName.GATEWAY], env.settings, args.trials))
    print(f"\n{args.trials} trials:")
    report(removals)
    worst = percentile([refusal.seconds for refusal in removals.other], 99)
    print(
        f"\nthe other process: p99 {worst * 1000:.1f} ms (goal <= {GOAL_SECONDS * 1000:.0f} ms); "
        f"machine: {os.cpu_count()} CPUs shared by the client, the services, PostgreSQL "
        "and Kafka"
    )


if __name__ == "__main__":
    main()
