"""Asset libraries as their users meet them: through the gateway, each person with
their own token, on a running system whose default plan has credits to pay avatars."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.permissions import Role
from shared.development_tokens import development_token
from shared.settings import get_settings
from shared.testing import eventually
from tests.e2e.conftest import RunningSystem

AVATAR_FEE = 100
PLAN_CREDITS = 10_000
PLAN_AVATAR_SLOTS = 3


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return {
        "ATRIUM_DEFAULT_PLAN_GENERATIVE_CREDITS": str(PLAN_CREDITS),
        "ATRIUM_DEFAULT_PLAN_AVATAR_SLOTS": str(PLAN_AVATAR_SLOTS),
        "ATRIUM_DEFAULT_PLAN_SEATS": "50",
        "ATRIUM_PRICE_AVATAR_FEE": str(AVATAR_FEE),
    }


@pytest.fixture
async def gateway(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=30) as client:
        yield client


class Person:
    def __init__(self, name: str) -> None:
        self.email = f"{name}.{uuid.uuid4().hex[:8]}@example.com"
        self.headers = {"authorization": f"Bearer {development_token(self.email, get_settings())}"}


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@dataclass
class Account:
    """An account's root and the people in it, by role, plus sub-workspaces."""

    gateway: httpx.AsyncClient
    owner: Person
    root_id: str
    people: dict[Role, Person] = field(default_factory=dict)

    @classmethod
    async def open(cls, gateway: httpx.AsyncClient, name: str = "Agency") -> Account:
        owner = Person("owner")
        root = ok(
            await gateway.post("/v1/workspaces", json={"name": name}, headers=owner.headers), 201
        )
        return cls(gateway, owner, root["id"], {Role.SUPER_ADMIN: owner})

    async def join(self, workspace_id: str, role: Role, name: str | None = None) -> Person:
        person = Person(name or role.value)
        ok(
            await self.gateway.post(
                f"/v1/workspaces/{workspace_id}/invitations",
                json={"email": person.email, "role": role.value},
                headers=self.owner.headers,
            ),
            201,
        )
        mine = ok(await self.gateway.get("/v1/invitations", headers=person.headers), 200)
        [invitation] = mine["items"]
        ok(
            await self.gateway.post(
                f"/v1/invitations/{invitation['id']}/accept", headers=person.headers
            ),
            200,
        )
        return person

    async def staff(self) -> None:
        for role in (Role.DEVELOPER, Role.CREATOR, Role.VIEWER):
            self.people[role] = await self.join(self.root_id, role)

    async def sub_workspace(self, name: str, parent_id: str | None = None) -> str:
        created = ok(
            await self.gateway.post(
                f"/v1/workspaces/{parent_id or self.root_id}/sub-workspaces",
                json={"name": name, "billing_mode": "parent", "api_access": False},
                headers=self.owner.headers,
            ),
            201,
        )
        return str(created["id"])

    async def create(
        self,
        workspace_id: str,
        kind: str,
        *,
        by: Person | None = None,
        name: str = "Asset",
        properties: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"kind": kind, "name": name}
        if properties is not None:
            body["properties"] = properties
        return await self.gateway.post(
            f"/v1/workspaces/{workspace_id}/assets",
            json=body,
            headers={**(by or self.owner).headers, **(headers or {})},
        )

    async def slots(self, workspace_id: str) -> dict[str, Any]:
        balances = ok(
            await self.gateway.get(
                f"/v1/workspaces/{workspace_id}/balances", headers=self.owner.headers
            ),
            200,
        )
        return {
            "used": balances["avatar_slots"]["used"],
            "limit": balances["avatar_slots"]["limit"],
            "credits": balances["generative_credits"]["balance"],
        }

    async def library(
        self, workspace_id: str, *, by: Person | None = None, query: str = ""
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = f"?limit=200{query}" + (f"&cursor={cursor}" if cursor else "")
            page = ok(
                await self.gateway.get(
                    f"/v1/workspaces/{workspace_id}/assets{params}",
                    headers=(by or self.owner).headers,
                ),
                200,
            )
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items


async def avatar_fees(admin_engine: AsyncEngine, workspace_id: str) -> int:
    """Avatar fees billing charged the workspace, from its ledger."""
    async with admin_engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT count(*) FROM billing.transactions "
                "WHERE kind = 'avatar_claim' AND workspace_id = :workspace"
            ),
            {"workspace": workspace_id},
        )
        return int(found.scalar_one())


async def unfinished_avatars(admin_engine: AsyncEngine) -> int:
    async with admin_engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM assets.assets WHERE status <> 'active'")
        )
        return int(found.scalar_one())


async def settled(admin_engine: AsyncEngine, timeout: float = 30) -> None:
    async def none_left() -> bool | None:
        return True if await unfinished_avatars(admin_engine) == 0 else None

    await eventually(none_left, timeout=timeout, what="every avatar settled")
