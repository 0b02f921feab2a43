"""Each public path goes to the service that owns it; anything else is no route."""

import uuid

import pytest

from contracts.permissions import Permission
from services.gateway.routes import NoRoute, RouteMatch, RouteTable
from shared.settings import ServiceName

TABLE = RouteTable()
WORKSPACE = uuid.uuid4()


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("POST", "/v1/workspaces", ServiceName.IDENTITY),
        ("GET", f"/v1/workspaces/{WORKSPACE}/members", ServiceName.IDENTITY),
        ("GET", f"/v1/workspaces/{WORKSPACE}", ServiceName.IDENTITY),
        ("POST", "/v1/invitations/abc/accept", ServiceName.IDENTITY),
        ("PUT", f"/v1/workspaces/{WORKSPACE}/seats", ServiceName.IDENTITY),
        ("GET", f"/v1/workspaces/{WORKSPACE}/balances", ServiceName.BILLING),
        ("PUT", f"/v1/workspaces/{WORKSPACE}/allocations", ServiceName.BILLING),
        ("POST", f"/v1/workspaces/{WORKSPACE}/api-keys/k/rotate", ServiceName.APIKEYS),
        ("DELETE", f"/v1/workspaces/{WORKSPACE}/assets/a/shares/t", ServiceName.ASSETS),
    ],
)
def test_a_path_is_routed_to_its_owner(method: str, path: str, service: ServiceName) -> None:
    matched = TABLE.match(method, path)
    assert isinstance(matched, RouteMatch)
    assert matched.route.service is service


def test_the_workspace_of_the_path_is_the_one_to_authorise() -> None:
    matched = TABLE.match("PATCH", f"/v1/workspaces/{WORKSPACE}/members/someone")
    assert isinstance(matched, RouteMatch)
    assert matched.workspace_id == WORKSPACE
    assert matched.route.permission is Permission.MANAGE_MEMBERS


@pytest.mark.parametrize(
    "path",
    [
        "/v1/workspacesX",
        "/v1/unknown",
        "/v1/workspaces/not-a-uuid",
        f"/v1/workspaces/{WORKSPACE}/x",
    ],
)
def test_anything_else_is_no_route(path: str) -> None:
    assert TABLE.match("GET", path) == NoRoute()


def test_a_known_path_with_another_method_names_the_methods_it_takes() -> None:
    assert TABLE.match("PUT", f"/v1/workspaces/{WORKSPACE}") == NoRoute(
        allowed_methods=("DELETE", "GET", "PATCH")
    )


def test_a_trailing_slash_is_another_path() -> None:
    assert isinstance(TABLE.match("GET", "/v1/workspaces/"), NoRoute)
