"""What a key may spend and how fast it may call: spends made with a key draw API
credits, within the key's monthly limit and the workspace's balance at once (also when
50 race); past the key's rate limit, 429 with the headers that say when to come back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.testing import eventually

from .support import Api, Person, bearer, problem_type, totals

pytestmark = pytest.mark.e2e

IMAGE_PRICE = 2


async def test_a_spend_with_a_key_draws_api_credits_up_to_the_keys_monthly_limit(
    api: Api,
) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    await api.buy(root["id"], owner, "api_credits", 100)
    await api.buy(root["id"], owner, "generative_credits", 100)
    key = await api.new_key(root["id"], owner, monthly_credit_limit=2 * IMAGE_PRICE + 1)

    spends = [await api.spend(root["id"], bearer(key["key"])) for _ in range(3)]
    by_person = await api.spend(root["id"], owner.headers)

    assert [spend.status_code for spend in spends] == [201, 201, 402], spends[-1].text
    assert [spend.json()["pool"] for spend in spends[:2]] == ["api_credits"] * 2
    assert [spend.json()["balance_after"] for spend in spends[:2]] == [98, 96]
    assert problem_type(spends[2]) == "key-credit-limit-reached"
    assert by_person.status_code == 201, by_person.text
    assert by_person.json()["pool"] == "generative_credits"
    balances = await api.balances(root["id"], owner)
    assert balances["api_credits"]["balance"] == 100 - 2 * IMAGE_PRICE
    assert balances["generative_credits"]["balance"] == 100 - IMAGE_PRICE


async def test_the_workspaces_allocation_binds_a_key_whose_own_limit_is_higher(
    api: Api,
) -> None:
    """Parent pool → sub-workspace → key: whichever runs out first refuses."""
    owner = Person.new("owner")
    root = await api.account(owner)
    await api.buy(root["id"], owner, "api_credits", 100)
    client = await api.sub_workspace(root["id"], owner)
    allocated = await api.client.put(
        f"/v1/workspaces/{client['id']}/allocations",
        json={"api_credits": 3 * IMAGE_PRICE},
        headers=owner.headers,
    )
    assert allocated.status_code == 200, allocated.text
    key = await api.new_key(client["id"], owner, monthly_credit_limit=1000)

    spends = [await api.spend(client["id"], bearer(key["key"])) for _ in range(4)]

    assert [spend.status_code for spend in spends] == [201, 201, 201, 402], spends[-1].text
    assert problem_type(spends[-1]) == "insufficient-credits"
    assert (await api.balances(client["id"], owner))["api_credits"]["balance"] == 0
    assert (await api.balances(root["id"], owner))["api_credits"]["balance"] == 100 - 6


async def test_fifty_concurrent_spends_with_a_key_whose_limit_covers_seven(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    await api.buy(root["id"], owner, "api_credits", 1000)
    key = await api.new_key(root["id"], owner, monthly_credit_limit=7 * IMAGE_PRICE)

    spends = await asyncio.gather(*(api.spend(root["id"], bearer(key["key"])) for _ in range(50)))

    statuses = sorted(spend.status_code for spend in spends)
    assert statuses == [201] * 7 + [402] * 43, [s.text for s in spends if s.status_code >= 500]
    assert {problem_type(s) for s in spends if s.status_code == 402} == {"key-credit-limit-reached"}
    assert (await api.balances(root["id"], owner))["api_credits"]["balance"] == 1000 - 14

    async def spent_counted() -> Any:
        response = await api.usage(root["id"], owner, key["id"])
        assert response.status_code == 200, response.text
        figures = totals(response.json())
        return figures if figures == expected else None

    expected = {"requests": 50, "errors": 43, "credits_spent": 7 * IMAGE_PRICE}
    await eventually(spent_counted, timeout=5, what=f"the key's usage to be {expected}")
    assert totals((await api.usage(root["id"], owner)).json()) == expected


async def test_past_its_rate_limit_a_key_gets_429_with_when_to_come_back(api: Api) -> None:
    owner = Person.new("owner")
    root = await api.account(owner)
    limited = await api.new_key(root["id"], owner, rate_limit={"requests": 3, "period_seconds": 60})
    other = await api.new_key(root["id"], owner)

    answers = [await api.read_with(root["id"], limited["key"]) for _ in range(4)]
    neighbour = await api.read_with(root["id"], other["key"])
    person = await api.client.get(f"/v1/workspaces/{root['id']}", headers=owner.headers)

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert problem_type(refused) == "rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"].split(";")[0].split(",")[0].strip() == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 60
    assert neighbour.status_code == 200
    assert person.status_code == 200
