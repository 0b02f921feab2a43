"""Members and invitations from the command line: listed, a role changed, a member
removed, invitations sent one by one or from a CSV file, and revoked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from contracts.permissions import Role
from tests.e2e.assets.conftest import Account, Person, ok

from .conftest import Atrium

pytestmark = pytest.mark.e2e


async def members(gateway: httpx.AsyncClient, account: Account) -> dict[str, str]:
    """Each member's role, by email."""
    page = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/members", headers=account.owner.headers
        ),
        200,
    )
    return {member["email"]: member["role"] for member in page["items"]}


async def pending(gateway: httpx.AsyncClient, account: Account) -> dict[str, str]:
    page = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/invitations", headers=account.owner.headers
        ),
        200,
    )
    return {invitation["email"]: invitation["role"] for invitation in page["items"]}


async def user_id(gateway: httpx.AsyncClient, account: Account, person: Person) -> str:
    page = ok(
        await gateway.get(
            f"/v1/workspaces/{account.root_id}/members", headers=account.owner.headers
        ),
        200,
    )
    return str(next(m["user_id"] for m in page["items"] if m["email"] == person.email))


async def test_members_are_listed_a_role_changed_and_a_member_removed(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    bob = await account.join(account.root_id, Role.VIEWER, "bob")
    bob_id = await user_id(gateway, account, bob)

    shown = await cli("members", account.root_id)
    as_json = await cli("members", account.root_id, "--json")

    assert shown.exit_code == as_json.exit_code == 0, shown.output + as_json.output
    line = next(line for line in shown.stdout.splitlines() if bob.email in line)
    assert [cell.strip() for cell in line.split("│")[1:-1]][:4] == [
        bob_id,
        bob.email,
        "viewer",
        "no",
    ]
    listed = json.loads(as_json.stdout)
    assert {m["email"]: m["role"] for m in listed["items"]} == await members(gateway, account)

    promoted = await cli("members", "role", account.root_id, bob_id, "creator")

    assert promoted.exit_code == 0, promoted.output
    assert f"{bob_id} is now creator" in promoted.stdout
    assert (await members(gateway, account))[bob.email] == "creator"

    removed = await cli("members", "remove", account.root_id, bob_id, "--json")

    assert removed.exit_code == 0, removed.output
    assert removed.stdout == ""
    assert bob.email not in await members(gateway, account)


async def test_a_refused_change_prints_the_detail_and_exits_1(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    owner_id = await user_id(gateway, account, account.owner)

    refused = await cli("members", "role", account.root_id, owner_id, "viewer")

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert "last Super Admin" in refused.stderr
    assert (await members(gateway, account))[account.owner.email] == "super_admin"


async def test_one_invitation_is_sent_listed_and_revoked(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient
) -> None:
    guest = Person("guest")

    invited = await cli("invite", account.root_id, guest.email, "--role", "developer", "--json")

    assert invited.exit_code == 0, invited.output
    invitation = json.loads(invited.stdout)
    assert (invitation["email"], invitation["status"]) == (guest.email, "pending")
    assert await pending(gateway, account) == {guest.email: "developer"}
    listed = await cli("invitations", account.root_id)
    assert invitation["id"] in listed.stdout
    assert guest.email in listed.stdout

    revoked = await cli("invitations", "revoke", account.root_id, invitation["id"])

    assert revoked.exit_code == 0, revoked.output
    assert f"Invitation {invitation['id']} revoked" in revoked.stdout
    assert await pending(gateway, account) == {}


async def test_a_csv_file_invites_every_row_but_the_one_refused(
    cli: Atrium, account: Account, gateway: httpx.AsyncClient, tmp_path: Path
) -> None:
    ada, bob = Person("ada"), Person("bob")
    rows = tmp_path / "people.csv"
    rows.write_text(f"email,role\n{ada.email},creator\nnot-an-email,viewer\n{bob.email},\n")

    invited = await cli("invite", account.root_id, "--from-csv", str(rows), "--role", "viewer")

    assert invited.exit_code == 1
    lines = invited.stdout.splitlines()
    assert any(line.startswith(f"✓ {ada.email} invited as creator") for line in lines)
    assert any(line.startswith(f"✓ {bob.email} invited as viewer") for line in lines)
    [refused] = [line for line in lines if line.startswith("✗")]
    assert refused.startswith("✗ line 3: not-an-email:")
    assert "(email: " in refused.removeprefix("✗ line 3: not-an-email:")
    assert lines[-1] == "2 invited, 1 refused."
    assert await pending(gateway, account) == {ada.email: "creator", bob.email: "viewer"}


async def test_a_csv_file_as_json_gives_each_rows_answer(
    cli: Atrium, account: Account, tmp_path: Path
) -> None:
    member = Person("member")
    rows = tmp_path / "people.csv"
    rows.write_text(f"email,role\n{member.email},viewer\n{account.owner.email},viewer\n")

    invited = await cli("invite", account.root_id, "--from-csv", str(rows), "--json")

    assert invited.exit_code == 1
    first, second = json.loads(invited.stdout)["items"]
    assert first["invitation"]["email"] == member.email
    assert second["problem"]["type"] == "already-member"
