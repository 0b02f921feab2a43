"""The product guide's journey, through the gateway, each person with their own token:
an account, a sub-workspace created with members, invitations accepted, the seat
limit reached, a member removed, and the next invitation admitted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import httpx
import pytest

from shared.development_tokens import development_token
from shared.settings import get_settings
from shared.testing import eventually

from .conftest import RunningSystem

pytestmark = pytest.mark.e2e


class Person:
    def __init__(self, name: str) -> None:
        self.email = f"{name}.{uuid.uuid4().hex[:8]}@example.com"
        self.headers = {"authorization": f"Bearer {development_token(self.email, get_settings())}"}


async def test_a_sub_workspace_is_staffed_until_the_seats_run_out_and_a_removal_frees_one(
    system: RunningSystem,
) -> None:
    ada, bob, cara, dan, eve, fay = (
        Person(name) for name in ("ada", "bob", "cara", "dan", "eve", "fay")
    )
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as gateway:
        root = await gateway.post("/v1/workspaces", json={"name": "Agency"}, headers=ada.headers)
        assert root.status_code == 201, root.text
        root_id = root.json()["id"]
        assert (
            await gateway.get(f"/v1/workspaces/{root_id}", headers=ada.headers)
        ).status_code == 200

        sub = await gateway.post(
            f"/v1/workspaces/{root_id}/sub-workspaces",
            json={
                "name": "Client A",
                "billing_mode": "parent",
                "api_access": False,
                "members": [
                    {"email": bob.email, "role": "creator"},
                    {"email": cara.email, "role": "viewer"},
                ],
            },
            headers=ada.headers,
        )
        assert sub.status_code == 201, sub.text
        sub_id = sub.json()["id"]

        for invitee in (bob, cara):
            mine = await gateway.get("/v1/invitations", headers=invitee.headers)
            assert mine.status_code == 200, mine.text
            [invitation] = mine.json()["items"]
            assert invitation["workspace_id"] == sub_id
            accepted = await gateway.post(
                f"/v1/invitations/{invitation['id']}/accept", headers=invitee.headers
            )
            assert accepted.status_code == 200, accepted.text
            seen = await gateway.get(f"/v1/workspaces/{sub_id}", headers=invitee.headers)
            assert seen.status_code == 200, seen.text

        assert (
            await gateway.get(f"/v1/workspaces/{root_id}", headers=bob.headers)
        ).status_code == 404

        for newcomer in (dan, eve):
            invited = await gateway.post(
                f"/v1/workspaces/{root_id}/invitations",
                json={"email": newcomer.email, "role": "creator"},
                headers=ada.headers,
            )
            assert invited.status_code == 201, invited.text
        full = await gateway.post(
            f"/v1/workspaces/{root_id}/invitations",
            json={"email": fay.email, "role": "creator"},
            headers=ada.headers,
        )
        assert full.status_code == 409
        assert full.json()["type"] == "seat-limit-reached"
        seats = await gateway.get(f"/v1/workspaces/{sub_id}/seats", headers=cara.headers)
        assert seats.json() | {"cap": None} == {
            "pool_root_id": root_id,
            "limit": 5,
            "used": 3,
            "pending": 2,
            "available": 0,
            "cap": None,
        }

        members = await gateway.get(f"/v1/workspaces/{sub_id}/members", headers=ada.headers)
        bob_id = next(m["user_id"] for m in members.json()["items"] if m["email"] == bob.email)
        removed = await gateway.delete(
            f"/v1/workspaces/{sub_id}/members/{bob_id}", headers=ada.headers
        )
        assert removed.status_code == 204

        async def bob_locked_out() -> bool | None:
            response = await gateway.get(f"/v1/workspaces/{sub_id}", headers=bob.headers)
            return True if response.status_code == 404 else None

        await eventually(bob_locked_out, timeout=10, what="the gateway to forget bob")

        admitted = await gateway.post(
            f"/v1/workspaces/{root_id}/invitations",
            json={"email": fay.email, "role": "creator"},
            headers=ada.headers,
        )
        assert admitted.status_code == 201, admitted.text


async def test_a_seat_cap_set_from_above_holds_in_the_very_next_request(
    system: RunningSystem,
) -> None:
    ada, bob, cara, dan = (Person(name) for name in ("ada", "bob", "cara", "dan"))
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as gateway:
        root_id = (
            await gateway.post("/v1/workspaces", json={"name": "Agency"}, headers=ada.headers)
        ).json()["id"]
        sub = await gateway.post(
            f"/v1/workspaces/{root_id}/sub-workspaces",
            json={
                "name": "Client B",
                "billing_mode": "parent",
                "api_access": False,
                "members": [{"email": bob.email, "role": "super_admin"}],
            },
            headers=ada.headers,
        )
        sub_id = sub.json()["id"]
        [invitation] = sub.json()["invitations"]
        accepted = await gateway.post(
            f"/v1/invitations/{invitation['id']}/accept", headers=bob.headers
        )
        assert accepted.status_code == 200, accepted.text

        async def cap(who: Person, seats: int) -> httpx.Response:
            return await gateway.put(
                f"/v1/workspaces/{sub_id}/seats", json={"cap": seats}, headers=who.headers
            )

        by_its_own_admin = await eventually(
            lambda: _answered(cap(bob, 5)), timeout=10, what="the gateway to know bob"
        )
        below = await cap(ada, 0)
        capped = await cap(ada, 2)
        admitted = await gateway.post(
            f"/v1/workspaces/{sub_id}/invitations",
            json={"email": cara.email, "role": "viewer"},
            headers=ada.headers,
        )
        refused = await gateway.post(
            f"/v1/workspaces/{sub_id}/invitations",
            json={"email": dan.email, "role": "viewer"},
            headers=ada.headers,
        )
        through_billing = await gateway.put(
            f"/v1/workspaces/{sub_id}/allocations", json={"seats": 9}, headers=ada.headers
        )

    assert by_its_own_admin.status_code == 403
    assert (below.status_code, below.json()["type"]) == (409, "below-usage")
    assert capped.status_code == 200, capped.text
    assert capped.json()["cap"] == 2
    assert admitted.status_code == 201, admitted.text
    assert (refused.status_code, refused.json()["type"]) == (409, "seat-limit-reached")
    assert through_billing.status_code == 422
    assert [error["field"] for error in through_billing.json()["errors"]] == ["seats"]


async def _answered(request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """The answer, once the gateway knows the caller's place (not a 404 any more)."""
    response = await request
    return None if response.status_code == 404 else response
