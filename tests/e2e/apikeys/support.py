"""People, keys and the requests the API-key tests make through the gateway."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.development_tokens import development_token, development_user_id
from shared.settings import get_settings
from shared.testing import eventually

REFUSED_WITHIN_SECONDS = 2.0
"""A revoked, rotated-out or suspended key is refused within a second (DESIGN.md); the
tests allow twice that on a busy machine, bench/apikey_revocation.py measures it."""


@dataclass(frozen=True)
class Person:
    email: str

    @classmethod
    def new(cls, name: str) -> Person:
        return cls(f"{name}.{uuid.uuid4().hex[:8]}@example.com")

    @property
    def user_id(self) -> str:
        return development_user_id(self.email)

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {development_token(self.email, get_settings())}"}


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"])


def totals(usage: dict[str, Any]) -> dict[str, int]:
    """A usage answer's days added up (a run may cross midnight UTC)."""
    summed = {"requests": 0, "errors": 0, "credits_spent": 0}
    for day in usage["items"]:
        for name in summed:
            summed[name] += day[name]
    return summed


class Api:
    """The public API through the gateway, as the tests use it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def created(self, path: str, body: dict[str, Any], caller: Person) -> Any:
        response = await self.client.post(path, json=body, headers=caller.headers)
        assert response.status_code == 201, response.text
        return response.json()

    async def account(self, owner: Person, name: str = "Agency") -> Any:
        return await self.created("/v1/workspaces", {"name": name}, owner)

    async def sub_workspace(
        self,
        parent_id: str,
        admin: Person,
        *,
        api_access: bool = True,
        billing_mode: str = "parent",
        name: str = "Client",
    ) -> Any:
        return await self.created(
            f"/v1/workspaces/{parent_id}/sub-workspaces",
            {"name": name, "billing_mode": billing_mode, "api_access": api_access},
            admin,
        )

    async def join(self, workspace_id: str, admin: Person, person: Person, role: str) -> None:
        invitation = await self.created(
            f"/v1/workspaces/{workspace_id}/invitations",
            {"email": person.email, "role": role},
            admin,
        )
        accepted = await self.client.post(
            f"/v1/invitations/{invitation['id']}/accept", headers=person.headers
        )
        assert accepted.status_code == 200, accepted.text

    async def new_key(self, workspace_id: str, caller: Person, **settings: Any) -> Any:
        return await self.created(
            f"/v1/workspaces/{workspace_id}/api-keys", {"name": "Integration", **settings}, caller
        )

    async def keys(self, workspace_id: str, caller: Person) -> dict[str, Any]:
        """Every key of the workspace, by id, from all pages."""
        found: dict[str, Any] = {}
        cursor: str | None = None
        while True:
            params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            page = await self.client.get(
                f"/v1/workspaces/{workspace_id}/api-keys", params=params, headers=caller.headers
            )
            assert page.status_code == 200, page.text
            found |= {key["id"]: key for key in page.json()["items"]}
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found

    async def buy(self, workspace_id: str, owner: Person, pool: str, quantity: int) -> None:
        await self.created(
            f"/v1/workspaces/{workspace_id}/purchases", {"pool": pool, "quantity": quantity}, owner
        )

    async def balances(self, workspace_id: str, caller: Person) -> Any:
        response = await self.client.get(
            f"/v1/workspaces/{workspace_id}/balances", headers=caller.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def spend(
        self,
        workspace_id: str,
        headers: dict[str, str],
        operation: str = "image_creation",
        quantity: int = 1,
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/workspaces/{workspace_id}/spend",
            json={"operation": operation, "quantity": quantity},
            headers={**headers, "idempotency-key": uuid.uuid4().hex},
        )

    async def read_with(self, workspace_id: str, key: str) -> httpx.Response:
        """What a key's user does most: read its own workspace."""
        return await self.client.get(f"/v1/workspaces/{workspace_id}", headers=bearer(key))

    async def refused_soon(
        self, workspace_id: str, key: str, *, timeout: float = REFUSED_WITHIN_SECONDS
    ) -> float:
        """Wait for the key to be refused (401); how long that took, in seconds."""
        started = time.perf_counter()

        async def refused() -> bool | None:
            response = await self.read_with(workspace_id, key)
            if response.status_code == 401:
                assert problem_type(response) == "unauthenticated"
                return True
            assert response.status_code == 200, response.text
            return None

        await eventually(refused, timeout=timeout, what="the key to be refused")
        return time.perf_counter() - started

    async def accepted_soon(
        self, workspace_id: str, key: str, *, timeout: float = REFUSED_WITHIN_SECONDS
    ) -> None:
        await self.answers_soon(f"/v1/workspaces/{workspace_id}", bearer(key), 200, timeout=timeout)

    async def answers_soon(
        self,
        path: str,
        headers: dict[str, str],
        status: int,
        *,
        params: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> None:
        """Wait until a GET of `path` answers `status`: each service applies a change
        (a setting, a key's state) from its own copy, each in its own time."""

        async def answered() -> bool | None:
            response = await self.client.get(path, params=params, headers=headers)
            return True if response.status_code == status else None

        await eventually(answered, timeout=timeout, what=f"GET {path} to answer {status}")

    async def usage(
        self, workspace_id: str, caller: Person, key_id: str | None = None
    ) -> httpx.Response:
        path = (
            f"/v1/workspaces/{workspace_id}/api-keys/{key_id}/usage"
            if key_id
            else f"/v1/workspaces/{workspace_id}/api-usage"
        )
        return await self.client.get(
            path, params={"from": today(), "to": today()}, headers=caller.headers
        )
