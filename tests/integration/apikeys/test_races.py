"""Concurrent changes to one key: only one of them wins."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.apikeys.conftest import ApiKeys

pytestmark = pytest.mark.integration

CONCURRENT = 10


async def test_of_concurrent_rotations_of_one_key_exactly_one_succeeds(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)

    answers = await asyncio.gather(
        *(apikeys.rotate(workspace, key["id"], grace=30) for _ in range(CONCURRENT))
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (CONCURRENT - 1)
    assert {answer.json()["type"] for answer in answers if answer.status_code == 409} == {
        "key-not-active"
    }
    assert len(await apikeys.keys(workspace)) == 2
    events = await apikeys.events.until(workspace.id, 3)
    await asyncio.sleep(0.5)
    assert len(apikeys.events.of(workspace.id)) == len(events) == 3


async def test_concurrent_revocations_of_one_key_announce_it_once(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)

    answers = await asyncio.gather(
        *(apikeys.revoke(workspace, key["id"]) for _ in range(CONCURRENT))
    )

    assert {answer.status_code for answer in answers} == {204}
    marker = await apikeys.created(workspace)
    events = await apikeys.events.until(workspace.id, 3)
    assert [kind for kind, _ in events] == ["apikey.created", "apikey.revoked", "apikey.created"]
    assert events[2][1]["key_id"] == marker["id"]
