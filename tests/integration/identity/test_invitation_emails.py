"""Invitations are matched on the verified email, compared in one canonical form on
both sides: an address only looks like another's, or spells the same domain another
way."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from shared.testing import SignedAs

from .conftest import create_root, person

pytestmark = pytest.mark.integration


async def test_the_kelvin_sign_does_not_stand_in_for_k(client: httpx.AsyncClient) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    local = f"kate.{uuid.uuid4().hex[:6]}"
    invited = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        json={"email": f"{local}@example.com", "role": "viewer"},
        auth=admin.auth,
    )
    impostor = SignedAs(f"impostor-{uuid.uuid4().hex[:6]}", email=f"\u212a{local[1:]}@example.com")

    seen = await client.get("/v1/invitations", auth=impostor)
    taken = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=impostor)
    kelvin_invitation = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        json={"email": f"\u212a{local[1:]}@example.com", "role": "viewer"},
        auth=admin.auth,
    )

    assert invited.status_code == 201
    assert seen.status_code in (200, 403)
    assert seen.status_code == 403 or seen.json()["items"] == []
    assert taken.status_code in (403, 404)
    assert kelvin_invitation.status_code == 422


async def test_an_email_domain_matches_in_its_unicode_and_its_punycode_form(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    local = f"jan.{uuid.uuid4().hex[:6]}"
    invited = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        json={"email": f"{local}@B\u00dcCHER.example", "role": "viewer"},
        auth=admin.auth,
    )
    invitee = SignedAs(
        f"jan-{uuid.uuid4().hex[:6]}", email=f"{local.upper()}@xn--bcher-kva.example"
    )

    accepted = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=invitee)
    again = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        json={"email": f"{local}@xn--bcher-kva.example", "role": "viewer"},
        auth=admin.auth,
    )

    assert invited.status_code == 201, invited.text
    assert invited.json()["email"] == f"{local}@xn--bcher-kva.example"
    assert accepted.status_code == 200, accepted.text
    assert again.status_code == 409
    assert again.json()["type"] == "already-member"


@pytest.mark.parametrize(
    "email",
    [
        "a\u0000b@example.com",
        "\ud800@example.com",
        "kate@\u212aexample.com",
        "e\u0301lodie@example.com",
    ],
)
async def test_an_email_that_cannot_be_compared_safely_is_refused(
    client: httpx.AsyncClient, email: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.post(
        f"/v1/workspaces/{root_id}/invitations",
        content=json.dumps({"email": email, "role": "viewer"}).encode(),
        headers={"content-type": "application/json"},
        auth=admin.auth,
    )

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["email"]
