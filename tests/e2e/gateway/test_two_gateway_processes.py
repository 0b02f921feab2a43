"""Two gateway processes, the requests alternating between them, give the same
answers: a member removed through either is refused by both within a second, and a
new member is admitted by both in the very next request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bench.access_propagation import RemovalTrials, another_gateway, report
from bench.system import NO_RATE_LIMITS, Person
from shared.settings import Settings
from tests.e2e.conftest import RunningSystem

# Fifty trials of several requests each, after a second process has joined the group.
pytestmark = [pytest.mark.e2e, pytest.mark.own_system, pytest.mark.timeout(900)]

TRIALS = 50
BOUND_SECONDS = 1.0
"""A removed member is refused by every process within this (the design's bound)."""


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    # Polling as fast as it can, a trial must not meet the callers' budgets.
    return NO_RATE_LIMITS


@pytest.fixture(scope="module")
async def gateways(system: RunningSystem, settings: Settings) -> AsyncIterator[tuple[str, str]]:
    """The system's gateway and a second process of it, both consuming."""
    async with another_gateway(system.gateway, settings) as second:
        yield system.gateway.url, second.url


@pytest.fixture
async def trials(gateways: tuple[str, str], settings: Settings) -> AsyncIterator[RemovalTrials]:
    async with httpx.AsyncClient(timeout=15) as client:
        trials = RemovalTrials(client, gateways, settings)
        await trials.open()
        yield trials


async def test_a_removed_member_is_refused_by_both_processes_within_a_second(
    trials: RemovalTrials,
) -> None:
    for trial in range(TRIALS):
        await trials.remove(trial)

    report(trials.removals)
    for refusals in (trials.removals.serving, trials.removals.other):
        assert max(refusal.seconds for refusal in refusals) < BOUND_SECONDS


async def test_a_new_member_is_admitted_by_both_processes_in_the_very_next_request(
    trials: RemovalTrials, settings: Settings
) -> None:
    for trial in range(10):
        serving, other = trials.gateways[trial % 2], trials.gateways[1 - trial % 2]
        owner = Person.new("owner", settings)
        root = await trials.created(serving, "/v1/workspaces", {"name": "New"}, owner)
        assert await trials.status(other, root["id"], owner) == 200

        member = await trials.joined(serving, root["id"], owner)

        assert await trials.status(other, root["id"], member) == 200
        assert await trials.status(serving, root["id"], member) == 200
