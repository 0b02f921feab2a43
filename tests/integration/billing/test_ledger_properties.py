"""Ledger invariants over random sequences of purchases, allocations, spends, avatar
claims and deletions: every transaction balances per pool, every balance is the sum
of its ledger lines and never negative, and credits are neither made nor lost."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from contracts.permissions import Role
from tests.integration.billing.conftest import BillingDriver, Workspace

pytestmark = pytest.mark.integration

PRICES = {"image_creation": 2, "video_generation": 10, "translation": 5}
CREDIT_POOLS = ("generative_credits", "api_credits")

purchases = st.tuples(
    st.just("purchase"), st.sampled_from((*CREDIT_POOLS, "avatar_slots")), st.integers(1, 200)
)
allocations = st.tuples(
    st.just("allocate"),
    st.integers(0, 1),
    st.sampled_from((*CREDIT_POOLS, "avatar_slots")),
    st.integers(0, 150),
)
spends = st.tuples(
    st.just("spend"),
    st.integers(0, 2),
    st.sampled_from(sorted(PRICES)),
    st.integers(1, 8),
    st.booleans(),
)
claims = st.tuples(st.just("claim"), st.integers(0, 2))
releases = st.tuples(st.just("release"), st.integers(0, 2))
deletions = st.tuples(st.just("delete"), st.integers(0, 1))
steps = st.lists(
    st.one_of(purchases, allocations, spends, claims, releases, deletions), max_size=14
)


async def total(driver: BillingDriver, workspaces: list[Workspace], pool: str) -> int:
    return sum([await driver.stored_balance(workspace, pool) for workspace in workspaces])


class Account:
    """A root with a strict and a falling-through sub-workspace, driven step by step,
    keeping its own count of what was bought and spent."""

    def __init__(self, driver: BillingDriver, client: httpx.AsyncClient) -> None:
        self.driver = driver
        self.client = client
        self.workspaces: list[Workspace] = []
        self.deleted: set[uuid.UUID] = set()
        self.held: dict[uuid.UUID, list[uuid.UUID]] = {}
        self.keys: dict[uuid.UUID, uuid.UUID] = {}
        self.bought = dict.fromkeys((*CREDIT_POOLS, "avatar_slots"), 0)
        self.spent = dict.fromkeys(CREDIT_POOLS, 0)

    async def open(self) -> None:
        root = await self.driver.root()
        self.workspaces = [
            root,
            await self.driver.sub(root, strict_quota=True),
            await self.driver.sub(root, strict_quota=False),
        ]
        self.held = {workspace.id: [] for workspace in self.workspaces}
        self.keys = {
            workspace.id: await self.driver.create_key(workspace) for workspace in self.workspaces
        }

    @property
    def root(self) -> Workspace:
        return self.workspaces[0]

    @property
    def children(self) -> list[Workspace]:
        return self.workspaces[1:]

    async def purchase(self, pool: str, quantity: int) -> None:
        await self.driver.purchase(self.root, pool, quantity)
        self.bought[pool] += quantity

    async def allocate(self, index: int, pool: str, target: int) -> None:
        child = self.children[index]
        response = await self.driver.allocate(child, **{pool: target})
        assert response.status_code in ({404} if child.id in self.deleted else {200, 409})

    async def spend(self, index: int, operation: str, quantity: int, by_key: bool) -> None:
        workspace = self.workspaces[index]
        caller: dict[str, Any] = {"api_key_id": self.keys[workspace.id]} if by_key else {}
        response = await self.driver.spend(
            workspace, operation, quantity, client=self.client, **caller
        )
        assert response.status_code in {201, 402, 404}
        if response.status_code == 201:
            self.spent[response.json()["pool"]] += PRICES[operation] * quantity

    async def claim(self, index: int) -> None:
        workspace = self.workspaces[index]
        avatar = uuid.uuid4()
        response = await self.client.post(
            f"/internal/v1/workspaces/{workspace.id}/avatar-claims",
            json={"avatar_id": str(avatar)},
            headers={"Idempotency-Key": str(avatar)},
            auth=self.driver.caller(workspace, role=Role.CREATOR),
        )
        assert response.status_code in {201, 402, 404, 409}
        if response.status_code == 201:
            self.held[workspace.id].append(avatar)
            self.spent["generative_credits"] += 100

    async def release(self, index: int) -> None:
        workspace = self.workspaces[index]
        if self.held[workspace.id]:
            response = await self.client.delete(
                f"/internal/v1/workspaces/{workspace.id}/avatar-claims/"
                f"{self.held[workspace.id].pop()}",
                auth=self.driver.caller(workspace, role=Role.CREATOR),
            )
            assert response.status_code in {204, 404}

    async def delete(self, index: int) -> None:
        await self.driver.delete(self.children[index])
        self.deleted.add(self.children[index].id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
async def test_the_ledger_stays_balanced_and_conserves_credits(
    driver: BillingDriver, steps: list[tuple[Any, ...]]
) -> None:
    async with driver.client() as client:
        account = Account(driver, client)
        await account.open()
        for name, *arguments in steps:
            await getattr(account, name)(*arguments)

    await driver.assert_ledger_consistent(account.workspaces)
    for pool in CREDIT_POOLS:
        assert await total(driver, account.workspaces, pool) == (
            account.bought[pool] - account.spent[pool]
        )
    async with driver.admin_engine.connect() as connection:
        slots = await connection.scalar(
            text(
                "SELECT sum(balance + in_use) FROM billing.balances"
                " WHERE pool = 'avatar_slots' AND workspace_id = ANY(:ids)"
            ),
            {"ids": [workspace.id for workspace in account.workspaces]},
        )
    assert slots == 3 + account.bought["avatar_slots"]
    for child in account.children:
        if child.id in account.deleted:
            for pool in (*CREDIT_POOLS, "avatar_slots", "seats"):
                assert await driver.stored_balance(child, pool) == 0
