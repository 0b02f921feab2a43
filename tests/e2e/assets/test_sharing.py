"""Sharing through the gateway: a Super Admin of the owner workspace shares an asset
with workspaces of the same account that they see, all or none; it is readable there
from the next request, read-only, takes no avatar slot there and cannot be shared on;
revoking, deleting the asset and deleting a workspace end shares at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.permissions import Role
from shared.testing import eventually

from .conftest import Account, Person, avatar_fees, ok

pytestmark = pytest.mark.e2e


class Tree:
    """An account: root R (Super Admin `owner`, a creator), sub-workspaces A and B, a
    creator in A only and a Super Admin of A only."""

    def __init__(self, account: Account, a: str, b: str) -> None:
        self.account = account
        self.root = account.root_id
        self.a = a
        self.b = b
        self.people: dict[str, Person] = {}

    @classmethod
    async def grow(cls, gateway: httpx.AsyncClient) -> Tree:
        account = await Account.open(gateway)
        tree = cls(account, await account.sub_workspace("A"), await account.sub_workspace("B"))
        tree.people["root creator"] = await account.join(tree.root, Role.CREATOR)
        tree.people["a creator"] = await account.join(tree.a, Role.CREATOR)
        tree.people["a admin"] = await account.join(tree.a, Role.SUPER_ADMIN)
        tree.people["b viewer"] = await account.join(tree.b, Role.VIEWER)
        return tree

    async def share(
        self, workspace_id: str, asset_id: str, targets: list[str], by: Person | None = None
    ) -> httpx.Response:
        return await self.account.gateway.post(
            f"/v1/workspaces/{workspace_id}/assets/{asset_id}/shares",
            json={"workspace_ids": targets},
            headers=(by or self.account.owner).headers,
        )

    async def targets(self, workspace_id: str, asset_id: str) -> list[str]:
        page = ok(
            await self.account.gateway.get(
                f"/v1/workspaces/{workspace_id}/assets/{asset_id}/shares",
                headers=self.account.owner.headers,
            ),
            200,
        )
        return sorted(item["workspace_id"] for item in page["items"])


def asset_path(workspace_id: str, asset_id: str) -> str:
    return f"/v1/workspaces/{workspace_id}/assets/{asset_id}"


async def test_a_shared_asset_is_readable_in_its_targets_at_once_and_read_only_there(
    gateway: httpx.AsyncClient,
) -> None:
    tree = await Tree.grow(gateway)
    kit = ok(await tree.account.create(tree.root, "brand_kit", name="House style"), 201)
    a_creator, b_viewer = tree.people["a creator"], tree.people["b viewer"]
    in_a = asset_path(tree.a, kit["id"])
    assert (await gateway.get(in_a, headers=a_creator.headers)).status_code == 404

    shared = ok(await tree.share(tree.root, kit["id"], [tree.a, tree.b, tree.a]), 201)

    assert sorted(item["workspace_id"] for item in shared["items"]) == sorted([tree.a, tree.b])
    seen = ok(await gateway.get(in_a, headers=a_creator.headers), 200)
    assert seen == {**kit, "shared_from": tree.root}
    assert ok(await gateway.get(asset_path(tree.b, kit["id"]), headers=b_viewer.headers), 200)
    assert [item["id"] for item in await tree.account.library(tree.a, by=a_creator)] == [kit["id"]]
    assert await tree.account.library(tree.a, by=a_creator, query="&include_shared=false") == []
    # The target's members reach it through their own workspace only.
    assert (
        await gateway.get(asset_path(tree.root, kit["id"]), headers=a_creator.headers)
    ).status_code == 404

    for response in (
        await gateway.patch(in_a, json={"name": "Mine"}, headers=a_creator.headers),
        await gateway.delete(in_a, headers=a_creator.headers),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "asset-read-only"
    not_shareable = await tree.share(tree.a, kit["id"], [tree.b], by=tree.people["a admin"])
    assert not_shareable.status_code == 409, not_shareable.text
    assert not_shareable.json()["type"] == "not-shareable"
    assert ok(await gateway.get(in_a, headers=a_creator.headers), 200)["name"] == "House style"

    # Sharing again adds only what is new, and answers every current target.
    again = ok(await tree.share(tree.root, kit["id"], [tree.b]), 201)
    assert len(again["items"]) == 2
    assert await tree.targets(tree.root, kit["id"]) == sorted([tree.a, tree.b])


async def test_only_a_super_admin_of_the_owner_shares_and_only_within_what_they_see(
    gateway: httpx.AsyncClient,
) -> None:
    tree = await Tree.grow(gateway)
    other = await Account.open(gateway, "Rival")
    voice = ok(await tree.account.create(tree.root, "voice"), 201)
    a_voice = ok(await tree.account.create(tree.a, "voice", by=tree.people["a creator"]), 201)

    by_creator = await tree.share(tree.root, voice["id"], [tree.a], by=tree.people["root creator"])
    assert by_creator.status_code == 403, by_creator.text

    # All or none: one target of another account refuses the request, naming it.
    mixed = await tree.share(tree.root, voice["id"], [tree.a, other.root_id])
    assert mixed.status_code == 404, mixed.text
    assert other.root_id in mixed.json()["detail"]
    assert tree.a not in mixed.json()["detail"]
    assert await tree.targets(tree.root, voice["id"]) == []
    itself = await tree.share(tree.root, voice["id"], [tree.root])
    assert itself.status_code == 404, itself.text

    # A's own Super Admin sees neither its sibling nor its parent.
    a_admin = tree.people["a admin"]
    for target in (tree.b, tree.root):
        refused = await tree.share(tree.a, a_voice["id"], [target], by=a_admin)
        assert refused.status_code == 404, refused.text
    # The root's Super Admin sees them all: A's asset goes to its sibling and its parent.
    ok(await tree.share(tree.a, a_voice["id"], [tree.b, tree.root]), 201)
    assert (
        ok(
            await gateway.get(
                asset_path(tree.root, a_voice["id"]), headers=tree.account.owner.headers
            ),
            200,
        )["shared_from"]
        == tree.a
    )


async def test_a_revoked_share_is_gone_in_the_next_request_and_a_deleted_asset_everywhere(
    gateway: httpx.AsyncClient,
) -> None:
    tree = await Tree.grow(gateway)
    template = ok(await tree.account.create(tree.root, "template"), 201)
    ok(await tree.share(tree.root, template["id"], [tree.a, tree.b]), 201)
    owner = tree.account.owner

    revoked = await gateway.delete(
        f"{asset_path(tree.root, template['id'])}/shares/{tree.a}", headers=owner.headers
    )
    assert revoked.status_code == 204, revoked.text

    in_a = asset_path(tree.a, template["id"])
    assert (await gateway.get(in_a, headers=tree.people["a creator"].headers)).status_code == 404
    assert await tree.account.library(tree.a, by=tree.people["a creator"]) == []
    assert await tree.targets(tree.root, template["id"]) == [tree.b]
    again = await gateway.delete(
        f"{asset_path(tree.root, template['id'])}/shares/{tree.a}", headers=owner.headers
    )
    assert again.status_code == 404, again.text

    ok(await gateway.delete(asset_path(tree.root, template["id"]), headers=owner.headers), 204)
    in_b = asset_path(tree.b, template["id"])
    assert (await gateway.get(in_b, headers=tree.people["b viewer"].headers)).status_code == 404
    assert await tree.account.library(tree.b, by=tree.people["b viewer"]) == []


async def test_a_shared_avatar_takes_no_slot_in_its_targets(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    tree = await Tree.grow(gateway)
    avatar = ok(await tree.account.create(tree.root, "avatar"), 201)

    ok(await tree.share(tree.root, avatar["id"], [tree.a]), 201)

    assert (await tree.account.slots(tree.a))["used"] == 0
    assert (await tree.account.slots(tree.root))["used"] == 1
    assert await avatar_fees(admin_engine, tree.a) == 0
    assert await avatar_fees(admin_engine, tree.root) == 1


async def test_a_deleted_workspace_takes_its_assets_and_the_shares_to_and_from_it(
    gateway: httpx.AsyncClient,
) -> None:
    tree = await Tree.grow(gateway)
    owner = tree.account.owner
    from_root = ok(await tree.account.create(tree.root, "voice", name="Root voice"), 201)
    from_a = ok(await tree.account.create(tree.a, "voice", name="A voice"), 201)
    ok(await tree.share(tree.root, from_root["id"], [tree.a, tree.b]), 201)
    ok(await tree.share(tree.a, from_a["id"], [tree.root, tree.b]), 201)

    deleted = await gateway.delete(f"/v1/workspaces/{tree.a}", headers=owner.headers)
    assert deleted.status_code == 202, deleted.text

    async def a_is_gone() -> bool | None:
        library = await tree.account.library(tree.root)
        shared_out = await tree.targets(tree.root, from_root["id"])
        return (
            True
            if [i["id"] for i in library] == [from_root["id"]] and shared_out == [tree.b]
            else None
        )

    await eventually(a_is_gone, timeout=20, what="workspace A's library and shares to end")
    b_library = await tree.account.library(tree.b, by=tree.people["b viewer"])
    assert [item["id"] for item in b_library] == [from_root["id"]]
    assert (
        await gateway.get(asset_path(tree.b, from_a["id"]), headers=owner.headers)
    ).status_code == 404


async def _reads_racing_one_revocation(
    gateway: httpx.AsyncClient, tree: Tree, asset_id: str, reader: Person
) -> list[int]:
    """Share, then revoke while two readers keep reading in the target; the statuses of
    the reads sent after the revocation was answered."""
    ok(await tree.share(tree.root, asset_id, [tree.a]), 201)
    loop = asyncio.get_running_loop()
    revoked_at: list[float] = []
    late: list[int] = []

    async def revoke() -> None:
        await asyncio.sleep(0.02)
        response = await gateway.delete(
            f"{asset_path(tree.root, asset_id)}/shares/{tree.a}", headers=tree.account.owner.headers
        )
        assert response.status_code == 204, response.text
        revoked_at.append(loop.time())

    async def read() -> None:
        while not revoked_at or loop.time() - revoked_at[0] < 0.05:
            sent = loop.time()
            response = await gateway.get(asset_path(tree.a, asset_id), headers=reader.headers)
            if revoked_at and sent > revoked_at[0]:
                late.append(response.status_code)

    await asyncio.gather(revoke(), read(), read())
    return late


async def test_a_read_racing_a_revocation_never_shows_the_asset_after_the_revocation(
    gateway: httpx.AsyncClient,
) -> None:
    tree = await Tree.grow(gateway)
    kit = ok(await tree.account.create(tree.root, "brand_kit"), 201)

    late_reads: list[int] = []
    for _ in range(10):
        late_reads += await _reads_racing_one_revocation(
            gateway, tree, kit["id"], tree.people["a creator"]
        )

    assert late_reads, "no read was sent after a revocation's answer"
    assert set(late_reads) == {404}
