"""What a person does in the console, in a real browser, and what the API then holds.

Each test opens its own account through the API (or through the console, where that is
the journey), acts in the browser, and checks the outcome both on the page and through
the gateway, so that a page that merely looks right cannot pass.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import httpx
import pytest

from contracts.permissions import Role
from shared.testing import eventually
from tests.e2e.assets.conftest import Account, Person, ok
from tests.e2e.console.conftest import Page

pytestmark = pytest.mark.e2e

IMAGE_PRICE = 2
"""The default price of `image_creation`, in credits."""


async def test_a_person_signs_in_by_email_opens_an_account_and_signs_out(
    page: Page, api: httpx.AsyncClient
) -> None:
    person = Person("founder")
    page.sign_in(person.email)
    assert page.text("header .who") == person.email

    page.fill("#root-name", "Northwind")
    page.submit("form[action='/workspaces']")
    assert page.text("h1").startswith("Northwind")
    assert "Super Admin" in page.text("h1 .badge")

    mine = ok(await api.get("/v1/workspaces", headers=person.headers), 200)["items"]
    assert [(workspace["name"], workspace["role"]) for workspace in mine] == [
        ("Northwind", "super_admin")
    ]
    page.open("/workspaces")
    [row] = page.all("table.tree tbody tr")
    assert "Northwind" in row.text
    assert row.find_element("css selector", "td.seats").text == "1 / 0 / 5"

    page.press("header form button")
    assert page.driver.current_url.endswith("/sign-in")
    page.open("/workspaces")
    assert page.driver.current_url.endswith("/sign-in"), "signed out, the tree is not shown"
    page.screenshot("sign-in")

    page.fill("#token", "not-a-token")
    page.submit("#token-sign-in")
    refused = await api.get("/v1/workspaces", headers={"authorization": "Bearer not-a-token"})
    assert refused.json()["detail"] in page.text(".problem")
    page.fill("#token", person.headers["authorization"].removeprefix("Bearer "))
    page.submit("#token-sign-in")
    assert page.text("header .who") == person.email
    assert "Northwind" in page.text("table.tree")


async def test_a_super_admin_creates_a_sub_workspace_with_a_member_and_allocates_credits(
    page: Page, api: httpx.AsyncClient
) -> None:
    account = await Account.open(api, "Agency")
    invitee = Person("client")
    page.sign_in(account.owner.email)
    page.open(f"/workspaces/{account.root_id}")
    page.find("#buy-pool").send_keys("generative")
    page.fill("#buy-quantity", "1000")
    page.submit("form[action$='/purchases']")
    assert page.text("#generative-credits").startswith("1,000")

    page.fill("#sub-name", "Client A")
    page.fill("#member-email-0", invitee.email)
    page.find("#member-role-0").send_keys("Creator")
    page.submit("#create-sub-workspace")
    assert page.text("h1").startswith("Client A")
    sub_id = page.driver.current_url.split("/workspaces/")[1].split("?")[0]

    page.fill("#allocate-generative_credits", "300")
    page.submit("#allocations-form")
    assert "Allocation saved." in page.text(".notice")
    assert page.text("#generative-credits").startswith("300")
    page.screenshot("workspace")
    page.screenshot("workspace-phone", phone=True)

    page.fill("#allocate-generative_credits", "5000")
    page.submit("#allocations-form")
    assert "409 · insufficient-balance" in page.problem()

    sub = ok(await api.get(f"/v1/workspaces/{sub_id}/balances", headers=account.owner.headers), 200)
    root = ok(
        await api.get(f"/v1/workspaces/{account.root_id}/balances", headers=account.owner.headers),
        200,
    )
    assert sub["generative_credits"]["balance"] == 300
    assert root["generative_credits"]["balance"] == 700
    invitations = ok(
        await api.get(f"/v1/workspaces/{sub_id}/invitations", headers=account.owner.headers), 200
    )["items"]
    assert [(each["email"], each["role"]) for each in invitations] == [(invitee.email, "creator")]

    page.open("/workspaces")
    rows = {row.get_attribute("data-workspace"): row for row in page.all("table.tree tbody tr")}
    assert rows[sub_id].find_element("css selector", "td.seats").text == "1 / 1 / 5"
    page.screenshot("tree")
    page.screenshot("tree-phone", phone=True)

    page.open(f"/workspaces/{sub_id}/members")
    assert invitee.email in page.text("#invitations")
    page.screenshot("members")

    page.open(f"/workspaces/{sub_id}")
    page.press("form[action$='/delete'] button")
    assert "300" in page.text(".card")
    page.screenshot("delete-confirmation")
    page.confirm()

    async def deleted() -> bool | None:
        answer = await api.get(
            f"/v1/workspaces/{account.root_id}/balances", headers=account.owner.headers
        )
        return True if answer.json()["generative_credits"]["balance"] == 1000 else None

    await eventually(deleted, what="the deleted sub-workspace's credits back in the root")


async def test_a_new_key_is_shown_once_and_its_requests_appear_in_its_usage(
    page: Page, api: httpx.AsyncClient
) -> None:
    account = await Account.open(api, "Studio")
    page.sign_in(account.owner.email)
    page.open(f"/workspaces/{account.root_id}/api-keys")
    page.fill("#key-name", "render farm")
    page.submit("#create-key")
    key = page.find("#new-key").get_attribute("value")
    assert key is not None
    assert key.startswith("atr_")
    page.screenshot("api-key-created")

    page.open(f"/workspaces/{account.root_id}/api-keys")
    assert key not in page.driver.page_source, "the secret is shown once only"
    assert "render farm" in page.text("#keys")

    ok(
        await api.post(
            f"/v1/workspaces/{account.root_id}/purchases",
            json={"pool": "api_credits", "quantity": 100},
            headers={**account.owner.headers, "idempotency-key": str(uuid.uuid4())},
        ),
        201,
    )
    for _ in range(2):
        ok(
            await api.post(
                f"/v1/workspaces/{account.root_id}/spend",
                json={"operation": "image_creation", "quantity": 1},
                headers={"x-api-key": key, "idempotency-key": str(uuid.uuid4())},
            ),
            201,
        )

    page.link("render farm")

    async def two_requests_shown() -> bool | None:
        page.driver.refresh()
        shown = [cell.text for cell in page.all("#key-usage td.requests")]
        return True if shown == ["2"] else None

    await eventually(two_requests_shown, timeout=20, what="the key's two requests in its usage")
    assert [cell.text for cell in page.all("#key-usage td.credits")] == [str(2 * IMAGE_PRICE)]
    page.screenshot("api-key-usage")

    page.open(f"/workspaces/{account.root_id}/api-keys")
    page.press("form[action$='/rotate'] button")
    page.confirm()
    rotated = page.find("#new-key").get_attribute("value")
    assert rotated is not None
    assert rotated.startswith("atr_")
    assert rotated != key
    page.press("form[action$='/revoke'] button")
    page.confirm()
    assert "Revoked." in page.text(".notice")
    keys = ok(
        await api.get(f"/v1/workspaces/{account.root_id}/api-keys", headers=account.owner.headers),
        200,
    )["items"]
    assert sorted(each["status"] for each in keys) == ["revoked", "revoked"]

    page.open(f"/workspaces/{account.root_id}/usage")
    by_operation = page.find("#usage-operation svg").get_attribute("aria-label")
    assert by_operation == "Credits spent per operation"
    assert "image_creation" in page.text("#usage-operation")
    assert str(2 * IMAGE_PRICE) in page.text("#usage-operation")
    assert "render farm" in page.text("#usage-api_key")
    page.screenshot("usage")


async def test_a_super_admin_shares_an_asset_with_a_chosen_sub_workspace(
    page: Page, api: httpx.AsyncClient
) -> None:
    account = await Account.open(api, "Brand house")
    chosen = await account.sub_workspace("Chosen")
    other = await account.sub_workspace("Other")
    page.sign_in(account.owner.email)
    page.open(f"/workspaces/{account.root_id}/assets")
    page.find("#asset-kind").send_keys("template")
    page.fill("#asset-name", "Launch deck")
    page.fill("#asset-properties", '{"slides": 12}')
    page.submit("#create-asset")
    assert "Launch deck" in page.text("#assets")

    page.find(f"form.share input[value='{chosen}']").click()
    page.submit("form.share")
    assert "Shared." in page.text(".notice")
    assert page.text("ul.shares .target") == "Chosen"
    page.screenshot("assets")

    def names(library: list[dict[str, Any]]) -> list[str]:
        return [asset["name"] for asset in library]

    assert names(await account.library(chosen)) == ["Launch deck"]
    assert names(await account.library(other)) == []

    page.press("ul.shares form button")
    page.confirm()
    assert "No longer shared." in page.text(".notice")
    assert names(await account.library(chosen)) == []


async def test_a_viewer_sees_no_editing_controls_and_a_forged_post_changes_nothing(
    page: Page, api: httpx.AsyncClient
) -> None:
    account = await Account.open(api, "Guarded")
    viewer = await account.join(account.root_id, Role.VIEWER)
    page.sign_in(viewer.email)

    page.open(f"/workspaces/{account.root_id}")
    assert "Viewer" in page.text("h1 .badge")
    for control in ("#settings-form", "#allocations-form", "#create-sub-workspace", "#buy-pool"):
        assert page.all(control) == [], f"{control} is shown to a viewer"
    page.open(f"/workspaces/{account.root_id}/members")
    assert page.all("#invite-form") == []
    assert page.all("#members form") == []
    page.open(f"/workspaces/{account.root_id}/assets")
    assert page.all("#create-asset") == []
    page.open(f"/workspaces/{account.root_id}/api-keys")
    assert page.all("#create-key") == []
    keys_refused = await api.get(
        f"/v1/workspaces/{account.root_id}/api-keys", headers=viewer.headers
    )
    assert keys_refused.status_code == 403
    assert keys_refused.json()["detail"] in page.problem()

    forged_rename = f"/workspaces/{account.root_id}/settings"
    forge = functools.partial(
        page.driver.execute_script,
        """
        const [action, name] = arguments;
        const csrf = document.querySelector("input[name=csrf]").value;
        const form = document.createElement("form");
        form.method = "post";
        form.action = action;
        for (const [field, value] of [["csrf", csrf], ["name", name]]) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = field; input.value = value;
            form.append(input);
        }
        document.body.append(form);
        form.submit();
        """,
        forged_rename,
        "Taken over",
    )
    page.navigating(forge)
    refused = page.problem()
    answer = await api.patch(
        f"/v1/workspaces/{account.root_id}", json={"name": "Taken over"}, headers=viewer.headers
    )
    assert answer.status_code == 403
    assert answer.json()["detail"] in refused
    assert "403 · " in refused
    page.screenshot("forbidden")

    forge_without_token = functools.partial(
        page.driver.execute_script,
        """
        const form = document.createElement("form");
        form.method = "post"; form.action = arguments[0];
        const input = document.createElement("input");
        input.type = "hidden"; input.name = "name"; input.value = "No token";
        form.append(input); document.body.append(form); form.submit();
        """,
        forged_rename,
    )
    page.navigating(forge_without_token)
    assert "stale or forged" in page.problem()

    workspace = ok(
        await api.get(f"/v1/workspaces/{account.root_id}", headers=account.owner.headers), 200
    )
    assert workspace["name"] == "Guarded"


async def test_a_super_admin_invites_changes_the_role_of_and_removes_a_member(
    page: Page, api: httpx.AsyncClient
) -> None:
    account = await Account.open(api, "Workshop")
    joiner = Person("joiner")
    page.sign_in(account.owner.email)
    page.open(f"/workspaces/{account.root_id}/members")
    page.fill("#invite-email", joiner.email)
    page.find("#invite-role").send_keys("Developer")
    page.submit("#invite-form")
    assert joiner.email in page.text("#invitations")

    page.sign_in(joiner.email)
    assert "Workshop" in page.text(".invitation")
    page.press(".invitation form[action$='/accept'] button")
    assert "Developer" in page.text("h1 .badge")

    page.sign_in(account.owner.email)
    page.open(f"/workspaces/{account.root_id}/members")
    row = next(row for row in page.all("#members tbody tr") if joiner.email in row.text)
    row.find_element("css selector", "select[name=role]").send_keys("Creator")
    page.navigating(row.find_element("css selector", "form[action$='/role'] button").click)
    assert "Saved." in page.text(".notice")

    async def roles() -> dict[str, str]:
        members = ok(
            await api.get(
                f"/v1/workspaces/{account.root_id}/members", headers=account.owner.headers
            ),
            200,
        )["items"]
        return {member["email"]: member["role"] for member in members}

    assert (await roles())[joiner.email] == "creator"

    row = next(row for row in page.all("#members tbody tr") if joiner.email in row.text)
    page.navigating(row.find_element("css selector", "form[action$='/remove'] button").click)
    assert joiner.email in page.text("h1")
    page.confirm()
    assert "Removed." in page.text(".notice")
    assert joiner.email not in await roles()
