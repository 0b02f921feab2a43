"""How soon a key stops working: the time from a revoke's 204 (and from the 200 of a
PATCH that turns a sub-workspace's `api_access` off) to the first 401 with the key,
next to the time from a member's removal (204) to the first refusal (404) of their
token, measured the same way in the same run.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), each service
as its own process (`bench.system`). Each trial makes a fresh key (or member), uses it
once so that the gateway knows it, makes the change, and from the change's answer on
sends the key's (or member's) `GET /v1/workspaces/{id}` one after another until the
first refusal. The goal: p99 <= 1 s for keys.

Run: `.venv/bin/python -m bench.apikey_revocation`; `--trials` (default 50).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.system import NO_RATE_LIMITS, as_person, percentile, running_system
from infra.sandbox import sandbox
from shared.development_tokens import development_user_id
from shared.settings import ServiceName, Settings

GOAL_SECONDS = 1.0
GIVE_UP_SECONDS = 10.0


async def first_refusal(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], refused: int
) -> tuple[float, int]:
    """Seconds until `path` is answered `refused`, and how many requests that took."""
    started = time.perf_counter()
    requests = 0
    while True:
        response = await client.get(path, headers=headers)
        requests += 1
        if response.status_code == refused:
            return time.perf_counter() - started, requests
        if response.status_code != 200:
            msg = f"{path}: {response.status_code} {response.text}"
            raise RuntimeError(msg)
        if time.perf_counter() - started > GIVE_UP_SECONDS:
            msg = f"{path} still answered after {GIVE_UP_SECONDS}s"
            raise RuntimeError(msg)


async def created(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    response = await client.post(path, json=body, headers=headers)
    if response.status_code != 201:
        msg = f"POST {path}: {response.status_code} {response.text}"
        raise RuntimeError(msg)
    return response.json()


class Trials:
    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.owner = as_person(f"owner.{uuid.uuid4().hex[:6]}@example.com", settings)
        self.root_id = ""

    async def open(self) -> None:
        root = await created(self.client, "/v1/workspaces", {"name": "Bench"}, self.owner)
        self.root_id = root["id"]

    async def used_key(self, workspace_id: str) -> dict[str, str]:
        key = await created(
            self.client,
            f"/v1/workspaces/{workspace_id}/api-keys",
            {"name": "Bench"},
            self.owner,
        )
        headers = {"authorization": f"Bearer {key['key']}"}
        used = await self.client.get(f"/v1/workspaces/{workspace_id}", headers=headers)
        if used.status_code != 200:
            msg = f"a new key: {used.status_code} {used.text}"
            raise RuntimeError(msg)
        return {"id": key["id"], **headers}

    async def revoke(self) -> tuple[float, int]:
        key = await self.used_key(self.root_id)
        key_id = key.pop("id")
        revoked = await self.client.delete(
            f"/v1/workspaces/{self.root_id}/api-keys/{key_id}", headers=self.owner
        )
        if revoked.status_code != 204:
            raise RuntimeError(revoked.text)
        return await first_refusal(self.client, f"/v1/workspaces/{self.root_id}", key, 401)

    async def api_access_off(self) -> tuple[float, int]:
        client = await created(
            self.client,
            f"/v1/workspaces/{self.root_id}/sub-workspaces",
            {"name": "Client", "billing_mode": "parent", "api_access": True},
            self.owner,
        )
        key = await self.used_key(client["id"])
        key.pop("id")
        off = await self.client.patch(
            f"/v1/workspaces/{client['id']}", json={"api_access": False}, headers=self.owner
        )
        if off.status_code != 200:
            raise RuntimeError(off.text)
        return await first_refusal(self.client, f"/v1/workspaces/{client['id']}", key, 401)

    async def remove_member(self) -> tuple[float, int]:
        email = f"member.{uuid.uuid4().hex[:8]}@example.com"
        member = as_person(email, self.settings)
        invitation = await created(
            self.client,
            f"/v1/workspaces/{self.root_id}/invitations",
            {"email": email, "role": "viewer"},
            self.owner,
        )
        accepted = await self.client.post(
            f"/v1/invitations/{invitation['id']}/accept", headers=member
        )
        if accepted.status_code != 200:
            raise RuntimeError(accepted.text)
        path = f"/v1/workspaces/{self.root_id}"
        if (await self.client.get(path, headers=member)).status_code != 200:
            msg = "a new member cannot read the workspace"
            raise RuntimeError(msg)
        user_id = development_user_id(email)
        removed = await self.client.delete(f"{path}/members/{user_id}", headers=self.owner)
        if removed.status_code != 204:
            raise RuntimeError(removed.text)
        return await first_refusal(self.client, path, member, 404)


async def measure(gateway: str, settings: Settings, trials: int) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as client:
        bench = Trials(client, settings)
        await bench.open()
        kinds: dict[str, Callable[[], Awaitable[tuple[float, int]]]] = {
            "key revoked (204) → 401": bench.revoke,
            "api_access off (200) → key 401": bench.api_access_off,
            "baseline: member removed (204) → 404": bench.remove_member,
        }
        seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
        polls: dict[str, list[int]] = {kind: [] for kind in kinds}
        # Trials take the kinds in turn, so that the machine's other load weighs on
        # all of them alike.
        for _ in range(trials):
            for kind, trial in kinds.items():
                took, requests = await trial()
                seconds[kind].append(took)
                polls[kind].append(requests)
    for kind, values in seconds.items():
        print(
            f"{kind:<40}{percentile(values, 50) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}"
            f"{max(values) * 1000:>9.1f}{sum(polls[kind]) / len(polls[kind]):>12.1f}"
        )
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args(argv)
    with (
        sandbox("atrium-bench") as env,
        tempfile.TemporaryDirectory(prefix="atrium-bench-logs-") as logs,
        running_system(env.environment, Path(logs), overrides=NO_RATE_LIMITS) as running,
    ):
        print(f"\n{args.trials} trials of each, ms:")
        print(f"{'change → first refusal':<40}{'p50':>9}{'p99':>9}{'max':>9}{'requests':>12}")
        seconds = asyncio.run(measure(running[ServiceName.GATEWAY].url, env.settings, args.trials))
    worst = max(percentile(seconds[kind], 99) for kind in list(seconds)[:2])
    print(
        f"\nkeys: p99 {worst * 1000:.1f} ms (goal <= {GOAL_SECONDS * 1000:.0f} ms); "
        f"'requests': the mean number of requests sent until the first refusal (1: the "
        f"very next request); machine: {os.cpu_count()} CPUs shared by the client, the "
        "services, PostgreSQL and Kafka"
    )


if __name__ == "__main__":
    main()
