"""Every public operation by every kind of caller, at the gateway's authorization layer.

The account's tree is a root R with two sub-workspaces A and B (siblings); another
account X stands beside it. Each caller acts on A: its Super Admin, Developer, Creator
and Viewer, a Super Admin of the parent R, a Super Admin of the sibling B, a
stranger, and API keys of A, R, B and X. What each may do is written out below from
DESIGN.md and API.md, not derived from the gateway's own route table, so that a wrong
permission in the table fails here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest

from contracts.permissions import Role
from services.gateway.keys import KeyRecord
from services.gateway.projections import Membership, WorkspaceNode
from services.gateway.routes import ROUTES, Route
from shared.api_keys import key_hash, new_key

from .conftest import InProcessGateway
from .support import APIKEY_PEPPER, StubUpstream, bearer

SA, DEV, CREATOR, VIEWER = Role.SUPER_ADMIN, Role.DEVELOPER, Role.CREATOR, Role.VIEWER
EVERY_ROLE = frozenset(Role)
SUPER_ADMIN_ONLY = frozenset({SA})
CREATOR_OR_ABOVE = frozenset({SA, DEV, CREATOR})
DEVELOPER_OR_ABOVE = frozenset({SA, DEV})

ALLOWED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/v1/workspaces/{workspace_id}"): EVERY_ROLE,
    ("PATCH", "/v1/workspaces/{workspace_id}"): SUPER_ADMIN_ONLY,
    ("DELETE", "/v1/workspaces/{workspace_id}"): SUPER_ADMIN_ONLY,
    ("POST", "/v1/workspaces/{workspace_id}/sub-workspaces"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/sub-workspaces"): EVERY_ROLE,
    ("GET", "/v1/workspaces/{workspace_id}/members"): EVERY_ROLE,
    ("PATCH", "/v1/workspaces/{workspace_id}/members/{user_id}"): SUPER_ADMIN_ONLY,
    # A member may remove themself; identity refuses the rest.
    ("DELETE", "/v1/workspaces/{workspace_id}/members/{user_id}"): EVERY_ROLE,
    ("POST", "/v1/workspaces/{workspace_id}/invitations"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/invitations"): SUPER_ADMIN_ONLY,
    ("DELETE", "/v1/workspaces/{workspace_id}/invitations/{invitation_id}"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/seats"): EVERY_ROLE,
    # Identity also requires a Super Admin of an ancestor for a seat cap.
    ("PUT", "/v1/workspaces/{workspace_id}/seats"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/balances"): EVERY_ROLE,
    ("POST", "/v1/workspaces/{workspace_id}/purchases"): SUPER_ADMIN_ONLY,
    ("PUT", "/v1/workspaces/{workspace_id}/allocations"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/allocations"): EVERY_ROLE,
    ("POST", "/v1/workspaces/{workspace_id}/spend"): CREATOR_OR_ABOVE,
    ("GET", "/v1/workspaces/{workspace_id}/ledger"): SUPER_ADMIN_ONLY,
    # Billing tells Super Admins (all usage) from developers (API usage) from the rest.
    ("GET", "/v1/workspaces/{workspace_id}/usage"): EVERY_ROLE,
    ("POST", "/v1/workspaces/{workspace_id}/api-keys"): DEVELOPER_OR_ABOVE,
    ("GET", "/v1/workspaces/{workspace_id}/api-keys"): DEVELOPER_OR_ABOVE,
    ("POST", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate"): DEVELOPER_OR_ABOVE,
    ("DELETE", "/v1/workspaces/{workspace_id}/api-keys/{key_id}"): DEVELOPER_OR_ABOVE,
    ("GET", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/usage"): DEVELOPER_OR_ABOVE,
    ("GET", "/v1/workspaces/{workspace_id}/api-usage"): DEVELOPER_OR_ABOVE,
    ("POST", "/v1/workspaces/{workspace_id}/assets"): CREATOR_OR_ABOVE,
    ("GET", "/v1/workspaces/{workspace_id}/assets"): EVERY_ROLE,
    ("GET", "/v1/workspaces/{workspace_id}/assets/{asset_id}"): EVERY_ROLE,
    ("PATCH", "/v1/workspaces/{workspace_id}/assets/{asset_id}"): CREATOR_OR_ABOVE,
    ("DELETE", "/v1/workspaces/{workspace_id}/assets/{asset_id}"): CREATOR_OR_ABOVE,
    ("POST", "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares"): SUPER_ADMIN_ONLY,
    ("GET", "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares"): SUPER_ADMIN_ONLY,
    ("DELETE", "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares/{target_id}"): (
        SUPER_ADMIN_ONLY
    ),
}

KEY_MANAGEMENT = frozenset(
    {
        ("POST", "/v1/workspaces/{workspace_id}/api-keys"),
        ("POST", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate"),
        ("DELETE", "/v1/workspaces/{workspace_id}/api-keys/{key_id}"),
    }
)
"""What a key may not do even in its own workspace: a leaked key must not mint keys."""

IN_WORKSPACE = [route for route in ROUTES if route.in_workspace]
SIGNED_IN = [route for route in ROUTES if not route.in_workspace]

ROOT, A, B, OTHER_ACCOUNT = (uuid.uuid4() for _ in range(4))
MEMBERS = (
    Membership(ROOT, "root-super-admin", SA),
    Membership(A, "a-super-admin", SA),
    Membership(A, "a-developer", DEV),
    Membership(A, "a-creator", CREATOR),
    Membership(A, "a-viewer", VIEWER),
    Membership(B, "b-super-admin", SA),
    Membership(OTHER_ACCOUNT, "x-super-admin", SA),
)


@dataclass(frozen=True)
class Caller:
    user_id: str
    role_in_a: Role | None
    """What the gateway must vouch for in A; None: A must look like it does not exist."""
    from_above: bool = False


CALLERS = (
    Caller("a-super-admin", SA),
    Caller("a-developer", DEV),
    Caller("a-creator", CREATOR),
    Caller("a-viewer", VIEWER),
    Caller("root-super-admin", SA, from_above=True),
    Caller("b-super-admin", None),
    Caller("stranger", None),
)


KEYS = {workspace: new_key() for workspace in (ROOT, A, B, OTHER_ACCOUNT)}


def seed(in_process: InProcessGateway) -> None:
    in_process.gateway.projection.load(
        [
            WorkspaceNode(ROOT, None, ROOT, api_access=True),
            WorkspaceNode(A, ROOT, ROOT, api_access=True),
            WorkspaceNode(B, ROOT, ROOT, api_access=True),
            WorkspaceNode(OTHER_ACCOUNT, None, OTHER_ACCOUNT, api_access=True),
        ],
        MEMBERS,
    )
    for workspace, key in KEYS.items():
        in_process.gateway.keys.put(
            KeyRecord(
                key_id=uuid.uuid5(uuid.NAMESPACE_OID, key),
                hash=key_hash(key, APIKEY_PEPPER),
                workspace_id=workspace,
                root_id=OTHER_ACCOUNT if workspace == OTHER_ACCOUNT else ROOT,
            )
        )


def path_of(route: Route, workspace_id: uuid.UUID) -> str:
    path = route.template.replace("{workspace_id}", str(workspace_id))
    return re.sub(r"\{\w+\}", lambda _: str(uuid.uuid4()), path)


def well_formed(route: Route, headers: dict[str, str]) -> dict[str, str]:
    """The credentials, and the headers the operation cannot go without."""
    return headers | dict.fromkeys(route.required_headers, "key")


def route_id(route: Route) -> str:
    return f"{route.method} {route.template}"


def test_the_expectations_cover_every_operation_in_a_workspace() -> None:
    assert {(route.method, route.template) for route in IN_WORKSPACE} == set(ALLOWED)


@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: caller.user_id)
@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_each_caller_gets_exactly_what_their_place_in_the_tree_allows(
    in_process: InProcessGateway, stub: StubUpstream, route: Route, caller: Caller
) -> None:
    seed(in_process)
    path = path_of(route, A)

    response = await in_process.client.request(
        route.method,
        path,
        headers=well_formed(route, bearer(caller.user_id)),
        json={} if route.method != "GET" else None,
    )

    if caller.role_in_a is None:
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not-found"
        assert stub.forwarded == []
    elif caller.role_in_a in ALLOWED[(route.method, route.template)]:
        assert response.status_code == 200, response.text
        [forwarded] = stub.forwarded
        assert (forwarded.method, forwarded.path) == (route.method, path)
        assert forwarded.principal.user_id == caller.user_id
        assert forwarded.principal.workspace_id == A
        assert forwarded.principal.role is caller.role_in_a
        assert forwarded.principal.ancestor_super_admin is caller.from_above
    else:
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
        assert stub.forwarded == []
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_a_super_admin_of_a_sub_workspace_has_no_right_in_its_parent(
    in_process: InProcessGateway, stub: StubUpstream, route: Route
) -> None:
    seed(in_process)

    response = await in_process.client.request(
        route.method, path_of(route, ROOT), headers=well_formed(route, bearer("a-super-admin"))
    )

    assert response.status_code == 404
    assert stub.forwarded == []


@pytest.mark.parametrize("caller", [caller.user_id for caller in CALLERS])
@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_another_accounts_ids_are_not_found_and_never_reach_a_service(
    in_process: InProcessGateway, stub: StubUpstream, route: Route, caller: str
) -> None:
    seed(in_process)

    response = await in_process.client.request(
        route.method, path_of(route, OTHER_ACCOUNT), headers=well_formed(route, bearer(caller))
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert stub.forwarded == []


@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_an_id_that_exists_nowhere_is_not_found_like_a_foreign_one(
    in_process: InProcessGateway, stub: StubUpstream, route: Route
) -> None:
    seed(in_process)

    unknown = await in_process.client.request(
        route.method,
        path_of(route, uuid.uuid4()),
        headers=well_formed(route, bearer("a-super-admin")),
    )
    foreign = await in_process.client.request(
        route.method,
        path_of(route, OTHER_ACCOUNT),
        headers=well_formed(route, bearer("a-super-admin")),
    )

    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json()["type"] == foreign.json()["type"] == "not-found"
    assert stub.forwarded == []


@pytest.mark.parametrize("caller", [caller.user_id for caller in CALLERS])
@pytest.mark.parametrize("route", SIGNED_IN, ids=route_id)
async def test_operations_outside_a_workspace_reach_the_service_with_no_workspace_vouched(
    in_process: InProcessGateway, stub: StubUpstream, route: Route, caller: str
) -> None:
    seed(in_process)

    response = await in_process.client.request(
        route.method, path_of(route, A), headers=well_formed(route, bearer(caller))
    )

    assert response.status_code == 200
    [forwarded] = stub.forwarded
    assert forwarded.principal.user_id == caller
    assert forwarded.principal.workspace_id is None
    assert forwarded.principal.role is None


@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_a_key_is_a_developer_of_its_own_workspace_except_for_managing_keys(
    in_process: InProcessGateway, stub: StubUpstream, route: Route
) -> None:
    seed(in_process)
    path = path_of(route, A)

    response = await in_process.client.request(
        route.method,
        path,
        headers=well_formed(route, {"x-api-key": KEYS[A]}),
        json={} if route.method != "GET" else None,
    )

    if (route.method, route.template) in KEY_MANAGEMENT:
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "forbidden"
        assert stub.forwarded == []
    elif DEV in ALLOWED[(route.method, route.template)]:
        assert response.status_code == 200, response.text
        [forwarded] = stub.forwarded
        assert (forwarded.method, forwarded.path) == (route.method, path)
        assert forwarded.principal.api_key_id == uuid.uuid5(uuid.NAMESPACE_OID, KEYS[A])
        assert forwarded.principal.user_id is None
        assert forwarded.principal.workspace_id == A
        assert forwarded.principal.role is DEV
        assert forwarded.principal.ancestor_super_admin is False
    else:
        assert response.status_code == 403, response.text
        assert stub.forwarded == []


@pytest.mark.parametrize(
    "owner", [ROOT, B, OTHER_ACCOUNT], ids=["the-parents-key", "a-siblings-key", "a-strangers-key"]
)
@pytest.mark.parametrize("route", IN_WORKSPACE, ids=route_id)
async def test_a_key_of_any_other_workspace_finds_nothing(
    in_process: InProcessGateway, stub: StubUpstream, route: Route, owner: uuid.UUID
) -> None:
    seed(in_process)

    response = await in_process.client.request(
        route.method,
        path_of(route, A),
        headers=well_formed(route, {"authorization": f"Bearer {KEYS[owner]}"}),
    )

    assert response.status_code == 404, response.text
    assert response.json()["type"] == "not-found"
    assert stub.forwarded == []


@pytest.mark.parametrize("route", SIGNED_IN, ids=route_id)
async def test_a_key_has_nothing_to_do_outside_a_workspace(
    in_process: InProcessGateway, stub: StubUpstream, route: Route
) -> None:
    seed(in_process)

    response = await in_process.client.request(
        route.method, path_of(route, A), headers=well_formed(route, {"x-api-key": KEYS[A]})
    )

    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "API keys act only within their own workspace."
    assert stub.forwarded == []
