"""A workspace's library through the gateway: who may create, read, change and delete
its assets, what their properties may hold, and how a library is listed."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contracts.permissions import Role

from .conftest import Account, ok

pytestmark = pytest.mark.e2e

BRAND_KIT = {
    "colors": ["#112233", "#AABBCC"],
    "logo_url": "https://cdn.example.com/logo.png",
    "fonts": ["Inter", "Source Serif"],
    "tagline": "kept as it is",
}


async def test_each_role_reads_the_library_and_creators_and_above_change_it(
    gateway: httpx.AsyncClient,
) -> None:
    account = await Account.open(gateway)
    await account.staff()
    root = account.root_id

    created = {}
    for role, kind in (
        (Role.SUPER_ADMIN, "template"),
        (Role.DEVELOPER, "voice"),
        (Role.CREATOR, "brand_kit"),
    ):
        asset = ok(
            await account.create(root, kind, by=account.people[role], name=f"{kind} of {role}"),
            201,
        )
        assert asset["workspace_id"] == root
        assert asset["kind"] == kind
        assert asset["properties"] == {}
        assert asset["shared_from"] is None
        created[role] = asset
    refused = await account.create(root, "voice", by=account.people[Role.VIEWER])
    assert refused.status_code == 403, refused.text

    kit = ok(await account.create(root, "brand_kit", name="  Acme kit ", properties=BRAND_KIT), 201)
    assert kit["name"] == "Acme kit"
    assert kit["properties"] == BRAND_KIT
    assert kit["created_by"].startswith("user:")

    for person in account.people.values():
        seen = ok(
            await gateway.get(f"/v1/workspaces/{root}/assets/{kit['id']}", headers=person.headers),
            200,
        )
        assert seen == kit
        names = {item["name"] for item in await account.library(root, by=person)}
        assert names == {asset["name"] for asset in created.values()} | {"Acme kit"}

    path = f"/v1/workspaces/{root}/assets/{kit['id']}"
    viewer = account.people[Role.VIEWER]
    assert (
        await gateway.patch(path, json={"name": "x"}, headers=viewer.headers)
    ).status_code == 403
    assert (await gateway.delete(path, headers=viewer.headers)).status_code == 403

    creator = account.people[Role.CREATOR]
    renamed = ok(await gateway.patch(path, json={"name": "Kit 2"}, headers=creator.headers), 200)
    assert renamed["name"] == "Kit 2"
    assert renamed["properties"] == BRAND_KIT
    assert renamed["updated_at"] > kit["updated_at"]
    replaced = ok(
        await gateway.patch(
            path, json={"properties": {"colors": ["#000000"]}}, headers=creator.headers
        ),
        200,
    )
    assert replaced["properties"] == {"colors": ["#000000"]}
    assert ok(await gateway.get(path, headers=viewer.headers), 200)["name"] == "Kit 2"

    assert (await gateway.delete(path, headers=creator.headers)).status_code == 204
    assert (await gateway.get(path, headers=viewer.headers)).status_code == 404
    assert (await gateway.delete(path, headers=creator.headers)).status_code == 404
    assert (
        await gateway.patch(path, json={"name": "y"}, headers=creator.headers)
    ).status_code == 404


async def test_a_caller_from_another_account_sees_nothing(gateway: httpx.AsyncClient) -> None:
    account = await Account.open(gateway)
    kit = ok(await account.create(account.root_id, "brand_kit"), 201)
    other = await Account.open(gateway, "Rival")
    stranger = other.owner

    own_path = f"/v1/workspaces/{account.root_id}/assets"
    for response in (
        await gateway.get(own_path, headers=stranger.headers),
        await gateway.get(f"{own_path}/{kit['id']}", headers=stranger.headers),
        await gateway.post(own_path, json={"kind": "voice", "name": "v"}, headers=stranger.headers),
        await gateway.patch(
            f"{own_path}/{kit['id']}", json={"name": "x"}, headers=stranger.headers
        ),
        await gateway.delete(f"{own_path}/{kit['id']}", headers=stranger.headers),
        await gateway.post(
            f"{own_path}/{kit['id']}/shares",
            json={"workspace_ids": [other.root_id]},
            headers=stranger.headers,
        ),
        await gateway.get(f"{own_path}/{kit['id']}/shares", headers=stranger.headers),
    ):
        assert response.status_code == 404, response.text

    # Through their own workspace, the asset's id is no asset of theirs.
    theirs = f"/v1/workspaces/{other.root_id}/assets/{kit['id']}"
    assert (await gateway.get(theirs, headers=stranger.headers)).status_code == 404
    assert (
        await gateway.patch(theirs, json={"name": "x"}, headers=stranger.headers)
    ).status_code == 404
    assert (await gateway.delete(theirs, headers=stranger.headers)).status_code == 404
    assert await other.library(other.root_id) == []
    assert ok(await gateway.get(f"{own_path}/{kit['id']}", headers=account.owner.headers), 200)


@pytest.mark.parametrize(
    ("kind", "properties", "field"),
    [
        ("brand_kit", {"colors": ["red"]}, "properties.colors.0"),
        ("brand_kit", {"logo_url": "http://cdn.example.com/logo.png"}, "properties.logo_url"),
        ("brand_kit", {"logo_url": "https://localhost/logo.png"}, "properties.logo_url"),
        ("brand_kit", {"fonts": [""]}, "properties.fonts.0"),
        ("voice", {"language": "english"}, "properties.language"),
        ("voice", {"gender": "robot"}, "properties.gender"),
        ("template", {"aspect_ratio": "4:3"}, "properties.aspect_ratio"),
        ("avatar", {"image_url": "https://10.0.0.1/me.png"}, "properties.image_url"),
        ("avatar", {"voice_id": "not-a-uuid"}, "properties.voice_id"),
        ("template", {"notes": {"deep": ["a\u0000b"]}}, "properties.notes.deep.0"),
        ("template", {"blob": "x" * (16 * 1024)}, "properties"),
    ],
)
async def test_properties_that_break_their_kinds_rules_are_refused_and_nothing_is_written(
    gateway: httpx.AsyncClient, kind: str, properties: dict[str, object], field: str
) -> None:
    account = await Account.open(gateway)
    before = await account.slots(account.root_id)

    refused = await account.create(account.root_id, kind, properties=properties)

    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "validation-failed"
    assert field in {error["field"] for error in problem["errors"]}
    assert await account.library(account.root_id) == []
    assert await account.slots(account.root_id) == before


async def test_bad_requests_are_refused_with_field_errors(gateway: httpx.AsyncClient) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    for body in (
        {"kind": "sticker", "name": "x"},
        {"kind": "voice"},
        {"kind": "voice", "name": "   "},
        {"kind": "voice", "name": "x", "colour": "red"},
        {"kind": "voice", "name": "x", "properties": ["not", "an", "object"]},
    ):
        response = await gateway.post(
            f"/v1/workspaces/{root}/assets", json=body, headers=account.owner.headers
        )
        assert response.status_code == 422, (body, response.text)
    template = ok(await account.create(root, "template", properties={"aspect_ratio": "1:1"}), 201)
    path = f"/v1/workspaces/{root}/assets/{template['id']}"
    patches: list[dict[str, object]] = [
        {},
        {"kind": "voice"},
        {"properties": {"aspect_ratio": "2:1"}},
    ]
    for patch in patches:
        response = await gateway.patch(path, json=patch, headers=account.owner.headers)
        assert response.status_code == 422, (patch, response.text)
    assert ok(await gateway.get(path, headers=account.owner.headers), 200) == template
    assert (
        await gateway.get(f"{path[:-36]}{uuid.uuid4()}", headers=account.owner.headers)
    ).status_code == 404
    assert (
        await gateway.get(
            f"/v1/workspaces/{root}/assets?cursor=bm9wZQ==", headers=account.owner.headers
        )
    ).status_code == 422


async def test_a_library_is_listed_in_pages_by_kind(gateway: httpx.AsyncClient) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    made = [
        ok(await account.create(root, kind, name=f"{kind} {n}"), 201)
        for n in range(3)
        for kind in ("voice", "template")
    ]

    pages, cursor, seen = 0, None, list[str]()
    while True:
        query = "?limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = ok(
            await gateway.get(
                f"/v1/workspaces/{root}/assets{query}", headers=account.owner.headers
            ),
            200,
        )
        pages += 1
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == [asset["id"] for asset in made]
    voices = await account.library(root, query="&kind=voice")
    assert [item["name"] for item in voices] == [f"voice {n}" for n in range(3)]


async def test_a_library_is_usable_in_the_request_after_its_workspace_is_created(
    gateway: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        account = await Account.open(gateway)
        sub = await account.sub_workspace("Client")
        ok(await account.create(sub, "voice", properties={"language": "pt-BR"}), 201)
