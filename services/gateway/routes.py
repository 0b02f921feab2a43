"""The public API as a table: which service owns each operation, and what the caller
must be allowed to do in the path's workspace for the gateway to let it through."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from contracts.permissions import Permission
from shared.settings import ServiceName

WORKSPACE_PARAMETER = "workspace_id"

_IDENTITY = ServiceName.IDENTITY
_BILLING = ServiceName.BILLING
_APIKEYS = ServiceName.APIKEYS
_ASSETS = ServiceName.ASSETS
_READ = Permission.READ_WORKSPACE
_MEMBERS = Permission.MANAGE_MEMBERS
_SUB_WORKSPACES = Permission.MANAGE_SUB_WORKSPACES
_PURCHASE = Permission.PURCHASE_AND_SHARE
_SPEND = Permission.SPEND_CREDITS
_KEYS = Permission.MANAGE_API_KEYS
_ASSETS_EDIT = Permission.EDIT_ASSETS


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    """The path with `{parameter}` segments, as in API.md."""
    service: ServiceName
    permission: Permission | None
    """Needed in the path's workspace; None for operations of any signed-in person."""
    verified_email: bool = False
    """The operation acts on what is addressed to the caller's email."""
    by_a_person: bool = False
    """A person must do it, not an API key: a leaked key must not mint keys."""
    required_headers: tuple[str, ...] = ()
    """Headers the operation cannot go without (a spend's `Idempotency-Key`)."""

    @property
    def in_workspace(self) -> bool:
        return "{" + WORKSPACE_PARAMETER + "}" in self.template


ROUTES: tuple[Route, ...] = (
    # identity: the workspace tree
    Route("POST", "/v1/workspaces", _IDENTITY, None),
    Route("GET", "/v1/workspaces", _IDENTITY, None),
    Route("GET", "/v1/workspaces/{workspace_id}", _IDENTITY, _READ),
    Route("PATCH", "/v1/workspaces/{workspace_id}", _IDENTITY, _SUB_WORKSPACES),
    Route("DELETE", "/v1/workspaces/{workspace_id}", _IDENTITY, _SUB_WORKSPACES),
    Route("POST", "/v1/workspaces/{workspace_id}/sub-workspaces", _IDENTITY, _SUB_WORKSPACES),
    Route("GET", "/v1/workspaces/{workspace_id}/sub-workspaces", _IDENTITY, _READ),
    # identity: members, invitations and seats
    Route("GET", "/v1/workspaces/{workspace_id}/members", _IDENTITY, _READ),
    Route("PATCH", "/v1/workspaces/{workspace_id}/members/{user_id}", _IDENTITY, _MEMBERS),
    # A member may remove themself: identity decides who else may.
    Route("DELETE", "/v1/workspaces/{workspace_id}/members/{user_id}", _IDENTITY, _READ),
    Route("POST", "/v1/workspaces/{workspace_id}/invitations", _IDENTITY, _MEMBERS),
    Route("GET", "/v1/workspaces/{workspace_id}/invitations", _IDENTITY, _MEMBERS),
    Route(
        "DELETE", "/v1/workspaces/{workspace_id}/invitations/{invitation_id}", _IDENTITY, _MEMBERS
    ),
    Route("GET", "/v1/workspaces/{workspace_id}/seats", _IDENTITY, _READ),
    # Identity also requires the caller to act from above (a Super Admin of an ancestor).
    Route("PUT", "/v1/workspaces/{workspace_id}/seats", _IDENTITY, _SUB_WORKSPACES),
    Route("GET", "/v1/invitations", _IDENTITY, None, verified_email=True),
    Route("POST", "/v1/invitations/{invitation_id}/accept", _IDENTITY, None, verified_email=True),
    Route("POST", "/v1/invitations/{invitation_id}/decline", _IDENTITY, None, verified_email=True),
    # billing owns credits and limits
    Route("GET", "/v1/workspaces/{workspace_id}/balances", _BILLING, _READ),
    Route("POST", "/v1/workspaces/{workspace_id}/purchases", _BILLING, _PURCHASE),
    # Billing also requires the caller to act from above (a Super Admin of the parent).
    Route("PUT", "/v1/workspaces/{workspace_id}/allocations", _BILLING, _SUB_WORKSPACES),
    Route("GET", "/v1/workspaces/{workspace_id}/allocations", _BILLING, _READ),
    Route(
        "POST",
        "/v1/workspaces/{workspace_id}/spend",
        _BILLING,
        _SPEND,
        required_headers=("Idempotency-Key",),
    ),
    Route("GET", "/v1/workspaces/{workspace_id}/ledger", _BILLING, _PURCHASE),
    # Super Admins see all usage, developers API usage: billing decides which.
    Route("GET", "/v1/workspaces/{workspace_id}/usage", _BILLING, _READ),
    # apikeys: keys of the workspaces that have API access
    Route("POST", "/v1/workspaces/{workspace_id}/api-keys", _APIKEYS, _KEYS, by_a_person=True),
    Route("GET", "/v1/workspaces/{workspace_id}/api-keys", _APIKEYS, _KEYS),
    Route(
        "POST",
        "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate",
        _APIKEYS,
        _KEYS,
        by_a_person=True,
    ),
    Route(
        "DELETE",
        "/v1/workspaces/{workspace_id}/api-keys/{key_id}",
        _APIKEYS,
        _KEYS,
        by_a_person=True,
    ),
    Route("GET", "/v1/workspaces/{workspace_id}/api-keys/{key_id}/usage", _APIKEYS, _KEYS),
    Route("GET", "/v1/workspaces/{workspace_id}/api-usage", _APIKEYS, _KEYS),
    # assets: each workspace's library and its shares
    Route("POST", "/v1/workspaces/{workspace_id}/assets", _ASSETS, _ASSETS_EDIT),
    Route("GET", "/v1/workspaces/{workspace_id}/assets", _ASSETS, _READ),
    Route("GET", "/v1/workspaces/{workspace_id}/assets/{asset_id}", _ASSETS, _READ),
    Route("PATCH", "/v1/workspaces/{workspace_id}/assets/{asset_id}", _ASSETS, _ASSETS_EDIT),
    Route("DELETE", "/v1/workspaces/{workspace_id}/assets/{asset_id}", _ASSETS, _ASSETS_EDIT),
    Route("POST", "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares", _ASSETS, _PURCHASE),
    Route("GET", "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares", _ASSETS, _PURCHASE),
    Route(
        "DELETE",
        "/v1/workspaces/{workspace_id}/assets/{asset_id}/shares/{target_id}",
        _ASSETS,
        _PURCHASE,
    ),
)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    workspace_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class NoRoute:
    allowed_methods: tuple[str, ...] = ()
    """Not empty when the path exists but not with this method (a 405, not a 404)."""


@dataclass(frozen=True, slots=True)
class _PathPattern:
    pattern: re.Pattern[str]
    by_method: dict[str, Route] = field(default_factory=dict)


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}$")


class RouteTable:
    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        self.routes = routes
        self._paths: dict[str, _PathPattern] = {}
        for route in routes:
            path = self._paths.setdefault(route.template, _PathPattern(_compile(route.template)))
            assert route.method not in path.by_method, f"{route.method} {route.template} twice"
            path.by_method[route.method] = route

    def match(self, method: str, path: str) -> RouteMatch | NoRoute:
        for candidate in self._paths.values():
            found = candidate.pattern.match(path)
            if found is None:
                continue
            raw_workspace = found.groupdict().get(WORKSPACE_PARAMETER)
            workspace_id = None if raw_workspace is None else uuid_or_none(raw_workspace)
            if raw_workspace is not None and workspace_id is None:
                return NoRoute()  # no workspace has that id
            route = candidate.by_method.get(method)
            if route is None:
                return NoRoute(allowed_methods=tuple(sorted(candidate.by_method)))
            return RouteMatch(route, workspace_id)
        return NoRoute()


def uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
