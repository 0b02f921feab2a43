"""Signing in and out: `atrium login` checks the token with the gateway before keeping
it in a file only its owner may read, and every later command uses it."""

from __future__ import annotations

import json
import stat
import tomllib

import httpx
import pytest

from tests.e2e.assets.conftest import Account

from .conftest import Atrium

pytestmark = pytest.mark.e2e


async def test_login_with_a_development_token_keeps_it_private_and_the_next_command_uses_it(
    cli: Atrium, gateway: httpx.AsyncClient
) -> None:
    account = await Account.open(gateway, name="Signed-in agency")

    signed_in = await cli.login(account.owner.email)

    assert f"Signed in to {cli.url}: member of 1 workspace(s)" in signed_in.stdout
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    stored = tomllib.loads(cli.config.read_text())
    assert stored["url"] == cli.url
    listed = await gateway.get(
        "/v1/workspaces", headers={"authorization": f"Bearer {stored['token']}"}
    )
    assert [workspace["id"] for workspace in listed.json()["items"]] == [account.root_id]
    tree = await cli("tree", "--json")
    assert tree.exit_code == 0, tree.output
    assert [top["name"] for top in json.loads(tree.stdout)] == ["Signed-in agency"]


async def test_login_with_a_pasted_token_prints_the_workspaces_as_json(
    cli: Atrium, gateway: httpx.AsyncClient
) -> None:
    account = await Account.open(gateway)
    token = account.owner.headers["authorization"].removeprefix("Bearer ")

    signed_in = await cli("login", "--url", cli.url, "--token", token, "--json")

    assert signed_in.exit_code == 0, signed_in.output
    answer = json.loads(signed_in.stdout)
    assert [workspace["id"] for workspace in answer["items"]] == [account.root_id]
    assert answer["items"][0]["role"] == "super_admin"
    assert tomllib.loads(cli.config.read_text())["token"] == token


async def test_a_token_the_gateway_refuses_is_not_kept(cli: Atrium) -> None:
    refused = await cli("login", "--url", cli.url, "--token", "not-a-token")

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == "The token is not valid: Not enough segments.\n"
    assert not cli.config.exists()


async def test_after_logout_a_command_asks_to_sign_in(cli: Atrium, account: Account) -> None:
    signed_out = await cli("logout")

    assert signed_out.exit_code == 0, signed_out.output
    assert "Signed out" in signed_out.stdout
    assert not cli.config.exists()
    balances = await cli("balances", account.root_id)
    assert balances.exit_code == 1
    assert "Not signed in: run `atrium login" in balances.stderr
