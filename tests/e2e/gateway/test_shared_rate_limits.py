"""Rate limits hold across gateway processes: two real gateway processes, requests
alternating between them, admit together what one caller's or one key's limit allows,
not twice as much."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.apikeys.support import Api, Person, bearer, problem_type
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

PER_MINUTE = 30
"""The limit per caller: 30 at once, 30 a minute."""
KEY_PER_MINUTE = 20
"""The key's own `rate_limit`, below the one it has as a caller."""
AT_ONCE = 10
TOLERANCE = 0.1
"""What refills while the requests are sent (half a token a second) stays within it."""


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return {
        "ATRIUM_RATE_LIMIT_BURST": str(PER_MINUTE),
        "ATRIUM_RATE_LIMIT_PER_SECOND": str(PER_MINUTE / 60),
    }


@pytest.fixture(scope="module")
def gateways(system: RunningSystem) -> Iterator[tuple[str, str]]:
    second = system.gateway.another().spawn()
    try:
        # Its consumers join the first one's groups: that rebalance may take a while.
        second.wait_ready(timeout=120)
        yield system.gateway.url, second.url
    finally:
        second.stop()


async def alternating(
    gateways: tuple[str, str], path: str, headers: dict[str, str], count: int
) -> list[tuple[str, httpx.Response]]:
    """`count` requests, the first to the first gateway, the next to the other, and so
    on, `AT_ONCE` at a time: which gateway answered, and what."""
    async with httpx.AsyncClient(timeout=15) as client:

        async def send(number: int) -> tuple[str, httpx.Response]:
            gateway = gateways[number % 2]
            return gateway, await client.get(gateway + path, headers=headers)

        answers: list[tuple[str, httpx.Response]] = []
        for first in range(0, count, AT_ONCE):
            answers += await asyncio.gather(
                *(send(number) for number in range(first, min(count, first + AT_ONCE)))
            )
    return answers


def admitted_by(answers: list[tuple[str, httpx.Response]]) -> dict[str, int]:
    """How many requests each gateway let through; every other one is a 429 problem."""
    admitted = {gateway: 0 for gateway, _ in answers}
    for gateway, answer in answers:
        if answer.status_code == 429:
            assert problem_type(answer) == "rate-limited"
            assert int(answer.headers["retry-after"]) >= 1
        else:
            assert answer.status_code == 200, answer.text
            admitted[gateway] += 1
    return admitted


def within_tolerance(admitted: int, limit: int) -> bool:
    return limit * (1 - TOLERANCE) <= admitted <= limit * (1 + TOLERANCE)


async def test_a_callers_limit_holds_across_two_gateway_processes(
    gateways: tuple[str, str],
) -> None:
    reader = Person.new("reader")

    started = time.monotonic()
    answers = await alternating(gateways, "/v1/workspaces", reader.headers, 2 * PER_MINUTE)
    seconds = time.monotonic() - started

    admitted = admitted_by(answers)
    print(f"\na caller's {PER_MINUTE}/min, {2 * PER_MINUTE} requests: {admitted} in {seconds:.1f}s")
    assert within_tolerance(sum(admitted.values()), PER_MINUTE), (admitted, seconds)
    assert all(admitted.values()), f"both processes admit some: {admitted}"


async def test_a_keys_own_limit_holds_across_two_gateway_processes(
    system: RunningSystem, gateways: tuple[str, str]
) -> None:
    owner = Person.new("owner")
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as client:
        api = Api(client)
        root = await api.account(owner)
        created = await api.new_key(
            root["id"], owner, rate_limit={"requests": KEY_PER_MINUTE, "period_seconds": 60}
        )

    started = time.monotonic()
    answers = await alternating(
        gateways, f"/v1/workspaces/{root['id']}", bearer(created["key"]), 2 * KEY_PER_MINUTE
    )
    seconds = time.monotonic() - started

    admitted = admitted_by(answers)
    print(
        f"\na key's {KEY_PER_MINUTE}/min, {2 * KEY_PER_MINUTE} requests: "
        f"{admitted} in {seconds:.1f}s"
    )
    assert within_tolerance(sum(admitted.values()), KEY_PER_MINUTE), (admitted, seconds)
    assert all(admitted.values()), f"both processes admit some: {admitted}"
    assert {answer.headers["ratelimit-limit"] for _, answer in answers} == {str(KEY_PER_MINUTE)}
    assert min(int(answer.headers["ratelimit-remaining"]) for _, answer in answers) == 0
