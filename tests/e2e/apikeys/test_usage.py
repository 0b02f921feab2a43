"""Usage per key and per workspace: each request made with a key is counted (requests,
errors, credits spent) within a couple of seconds, a sub-workspace's figures are its
own and its parent's are the parent's own."""

from __future__ import annotations

import time
from typing import Any

import pytest

from shared.testing import eventually

from .support import Api, Person, bearer, today, totals

pytestmark = pytest.mark.e2e

COUNTED_WITHIN_SECONDS = 3.0
"""A couple of seconds: the gateway flushes its batch at least every second."""
IMAGE_PRICE = 2


async def counted(api: Api, workspace_id: str, caller: Person, key_id: str | None) -> Any:
    response = await api.usage(workspace_id, caller, key_id)
    assert response.status_code == 200, response.text
    return response.json()


async def test_requests_errors_and_credits_are_counted_per_key_and_per_workspace(
    api: Api,
) -> None:
    owner, developer = Person.new("owner"), Person.new("dev")
    root = await api.account(owner)
    await api.buy(root["id"], owner, "api_credits", 100)
    client = await api.sub_workspace(root["id"], owner)
    allocated = await api.client.put(
        f"/v1/workspaces/{client['id']}/allocations",
        json={"api_credits": 50},
        headers=owner.headers,
    )
    assert allocated.status_code == 200, allocated.text
    await api.join(client["id"], owner, developer, "developer")
    first = await api.new_key(client["id"], developer, name="First")
    second = await api.new_key(client["id"], developer, name="Second")
    unused = await api.new_key(client["id"], developer, name="Unused")
    at_the_root = await api.new_key(root["id"], owner, name="Root's")
    started = time.perf_counter()

    for _ in range(3):
        assert (await api.read_with(client["id"], first["key"])).status_code == 200
    bad = await api.client.post(
        f"/v1/workspaces/{client['id']}/spend",
        json={"operation": "image_creation", "quantity": 0},
        headers={**bearer(first["key"]), "idempotency-key": "bad"},
    )
    assert bad.status_code == 422, bad.text
    spent = await api.spend(client["id"], bearer(first["key"]))
    assert spent.status_code == 201, spent.text
    for _ in range(2):
        assert (await api.read_with(client["id"], second["key"])).status_code == 200
    assert (await api.read_with(root["id"], at_the_root["key"])).status_code == 200

    expected = {"requests": 7, "errors": 1, "credits_spent": IMAGE_PRICE}

    async def all_counted() -> Any:
        figures = totals(await counted(api, client["id"], developer, None))
        return figures if figures == expected else None

    await eventually(
        all_counted, timeout=COUNTED_WITHIN_SECONDS, what=f"the workspace's usage {expected}"
    )
    print(f"requests made → counted: {time.perf_counter() - started:.2f}s")

    first_usage = await counted(api, client["id"], developer, first["id"])
    assert [day["date"] for day in first_usage["items"]] == [today()]
    assert totals(first_usage) == {"requests": 5, "errors": 1, "credits_spent": IMAGE_PRICE}
    assert totals(await counted(api, client["id"], developer, second["id"])) == {
        "requests": 2,
        "errors": 0,
        "credits_spent": 0,
    }
    assert totals(await counted(api, client["id"], developer, unused["id"])) == {
        "requests": 0,
        "errors": 0,
        "credits_spent": 0,
    }
    assert totals(await counted(api, client["id"], owner, None)) == totals(
        await counted(api, client["id"], developer, None)
    )

    async def root_counted() -> Any:
        figures = totals(await counted(api, root["id"], owner, None))
        return figures if figures["requests"] else None

    assert await eventually(root_counted, timeout=COUNTED_WITHIN_SECONDS) == {
        "requests": 1,
        "errors": 0,
        "credits_spent": 0,
    }

    listed = await api.keys(client["id"], developer)
    assert listed[first["id"]]["last_used_at"] is not None
    assert listed[second["id"]]["last_used_at"] is not None
    assert listed[unused["id"]]["last_used_at"] is None


async def test_usage_of_a_key_of_another_workspace_is_a_404(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    client = await api.sub_workspace(root["id"], owner)
    sibling = await api.sub_workspace(root["id"], owner, name="Sibling")
    key = await api.new_key(client["id"], owner)

    response = await api.usage(sibling["id"], owner, key["id"])

    assert response.status_code == 404, response.text
