"""The asset library from the command line: listed, shared with another workspace of
the account, and the share ended."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.assets.conftest import Account, ok

from .conftest import Atrium

pytestmark = pytest.mark.e2e


async def test_assets_are_listed_shared_and_unshared(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    voice = ok(await account.create(account.root_id, "voice", name="Narrator"), 201)
    first = await account.sub_workspace("Client 1")
    second = await account.sub_workspace("Client 2")

    shown = await cli("assets", "list", account.root_id)

    assert shown.exit_code == 0, shown.output
    line = next(line for line in shown.stdout.splitlines() if voice["id"] in line)
    assert "voice" in line
    assert "Narrator" in line

    shared = await cli(
        "assets", "share", account.root_id, voice["id"], "--to", first, "--to", second
    )

    assert shared.exit_code == 0, shared.output
    assert first in shared.stdout
    assert second in shared.stdout
    for target in (first, second):
        [seen] = await account.library(target)
        assert (seen["id"], seen["shared_from"]) == (voice["id"], account.root_id)

    unshared = await cli("assets", "unshare", account.root_id, voice["id"], first)

    assert unshared.exit_code == 0, unshared.output
    assert await account.library(first) == []
    listed = await cli("assets", "list", second, "--json")
    assert [asset["id"] for asset in json.loads(listed.stdout)["items"]] == [voice["id"]]


async def test_a_shared_in_asset_cannot_be_shared_on(cli: Atrium, account: Account) -> None:
    voice = ok(await account.create(account.root_id, "voice"), 201)
    client = await account.sub_workspace("Client")
    other = await account.sub_workspace("Other")
    assert (
        await cli("assets", "share", account.root_id, voice["id"], "--to", client)
    ).exit_code == 0

    refused = await cli("assets", "share", client, voice["id"], "--to", other)

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        f"Asset {voice['id']} is shared with this workspace by workspace {account.root_id}; "
        "only its owner shares it.\n"
    )
    assert await account.library(other) == []
