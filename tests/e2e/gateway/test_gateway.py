"""The gateway in front of the real identity and billing processes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from shared.development_tokens import development_token, development_user_id
from shared.settings import get_settings
from shared.testing import eventually
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]


def as_user(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {development_token(f'{name}@example.com', get_settings())}"}


def user_id_of(name: str) -> str:
    return development_user_id(f"{name}@example.com")


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any], user: str) -> Any:
    response = await client.post(path, json=body, headers=as_user(user))
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_workspace_is_readable_by_its_creator_at_once(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        for attempt in range(10):
            root = await created(client, "/v1/workspaces", {"name": f"Now {attempt}"}, "ivy")
            read = await client.get(f"/v1/workspaces/{root['id']}", headers=as_user("ivy"))
            assert read.status_code == 200, read.text
            child = await created(
                client,
                f"/v1/workspaces/{root['id']}/sub-workspaces",
                {"name": "Team", "billing_mode": "parent", "api_access": False},
                "ivy",
            )
            members = await client.get(
                f"/v1/workspaces/{child['id']}/members", headers=as_user("ivy")
            )
            assert members.status_code == 200, members.text


async def test_someone_else_sees_nothing_of_a_workspace(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        root = await created(client, "/v1/workspaces", {"name": "Private"}, "jay")
        for path in ("", "/members", "/balances", "/seats"):
            response = await client.get(
                f"/v1/workspaces/{root['id']}{path}", headers=as_user("kim")
            )
            assert response.status_code == 404, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_removed_member_loses_access_when_the_event_arrives(
    system: RunningSystem,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        root = await created(client, "/v1/workspaces", {"name": "Club"}, "lea")
        invitation = await created(
            client,
            f"/v1/workspaces/{root['id']}/invitations",
            {"email": "max@example.com", "role": "viewer"},
            "lea",
        )
        accepted = await client.post(
            f"/v1/invitations/{invitation['id']}/accept", headers=as_user("max")
        )
        assert accepted.status_code == 200, accepted.text
        as_viewer = await client.get(f"/v1/workspaces/{root['id']}", headers=as_user("max"))
        assert as_viewer.status_code == 200, as_viewer.text
        refused = await client.post(
            f"/v1/workspaces/{root['id']}/invitations",
            json={"email": "ned@example.com", "role": "viewer"},
            headers=as_user("max"),
        )
        assert refused.status_code == 403

        removed = await client.delete(
            f"/v1/workspaces/{root['id']}/members/{user_id_of('max')}", headers=as_user("lea")
        )
        assert removed.status_code == 204, removed.text
        started = time.perf_counter()

        async def refused_now() -> bool | None:
            response = await client.get(f"/v1/workspaces/{root['id']}", headers=as_user("max"))
            return True if response.status_code == 404 else None

        await eventually(refused_now, timeout=10, what="the removed member to be refused")
        print(f"member removed → gateway refuses: {time.perf_counter() - started:.3f}s")


async def test_the_api_document_is_the_services_public_operations(
    system: RunningSystem,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")

    paths = set(document["paths"])
    assert {"/v1/workspaces", "/v1/workspaces/{workspace_id}/balances"} <= paths
    assert all(path.startswith("/v1/") for path in paths)
    assert "bearer" in document["components"]["securitySchemes"]
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_a_service_that_is_down_is_a_502_problem(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        root = await created(client, "/v1/workspaces", {"name": "Down"}, "ola")
        system.billing.stop()
        try:
            response = await client.get(
                f"/v1/workspaces/{root['id']}/balances", headers=as_user("ola")
            )
            ready = await client.get("/readyz")
        finally:
            system.billing.start()
    assert response.status_code == 502
    assert response.json()["type"] == "bad-gateway"
    assert ready.status_code == 503


async def test_a_service_error_for_one_caller_never_becomes_another_callers_502(
    system: RunningSystem,
) -> None:
    """identity fails one caller's request (a name it cannot store); the next caller's
    request must not be sent down the connection identity closes after its 500."""
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10) as client:
        others = []
        for attempt in range(10):
            await client.post(
                "/v1/workspaces",
                content='{"name": "x\\ud800"}',
                headers={**as_user("pat"), "content-type": "application/json"},
            )
            others.append(
                await client.post(
                    "/v1/workspaces", json={"name": f"Fine {attempt}"}, headers=as_user("quinn")
                )
            )

    assert [response.status_code for response in others] == [201] * 10, [
        response.text for response in others if response.status_code != 201
    ]
