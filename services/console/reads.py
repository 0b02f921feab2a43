"""What the pages show, read from the API as the signed-in person: the workspace tree
with its figures, and the person's role on a workspace (which decides which controls a
page offers; the gateway still decides what is allowed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from clients.gateway import Problem
from services.console.session import Caller


@dataclass
class Node:
    """A workspace of the tree, with what the caller may read of it."""

    workspace: dict[str, Any]
    role: str | None
    seats: dict[str, Any] | None = None
    balances: dict[str, Any] | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.workspace["id"])


async def role_on(me: Caller, workspace_id: str) -> str | None:
    """The caller's role on the workspace, as its member list reports it (a Super Admin
    of an ancestor appears there as an inherited Super Admin)."""
    members = await me.gateway.all_items(f"/v1/workspaces/{workspace_id}/members")
    return next((str(member["role"]) for member in members if me.is_me(member)), None)


async def together(*reads: Awaitable[Any]) -> list[Any]:
    """The answers of reads made at once. When one fails, the others are cancelled before
    the failure is shown: none is left running on a client the page is about to close."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


NOT_FOR_THIS_CALLER = frozenset({403, 404, 409})
"""Answers that mean "not yours to read here" (a role, a workspace out of reach, API
access off), as opposed to a failure, which is shown."""


async def or_none(read: Any) -> Any:
    """A figure the caller may not read shows as missing; any other error is shown."""
    try:
        return await read
    except Problem as problem:
        if problem.status in NOT_FOR_THIS_CALLER:
            return None
        raise


async def workspace_tree(me: Caller) -> list[Node]:
    """The caller's workspaces, the topmost ones first, each with its sub-workspaces
    (recursively), seat use and balances."""
    mine = await me.gateway.all_items("/v1/workspaces")
    role_of = {str(workspace["id"]): str(workspace["role"]) for workspace in mine}
    tops = [
        workspace
        for workspace in mine
        if workspace.get("parent_id") is None or str(workspace["parent_id"]) not in role_of
    ]
    return list(
        await together(
            *(_grown(me, workspace, role_of[str(workspace["id"])], role_of) for workspace in tops)
        )
    )


async def _grown(
    me: Caller, workspace: dict[str, Any], role: str | None, role_of: dict[str, str]
) -> Node:
    workspace_id = str(workspace["id"])
    children, seats, balances = await together(
        or_none(me.gateway.all_items(f"/v1/workspaces/{workspace_id}/sub-workspaces")),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/seats")),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/balances")),
    )
    node = Node(workspace, role, seats, balances)
    node.children = list(
        await together(
            *(
                _grown(me, child, _role_below(role, role_of.get(str(child["id"]))), role_of)
                for child in children or []
            )
        )
    )
    return node


def _role_below(parent_role: str | None, own_role: str | None) -> str | None:
    """A Super Admin of a workspace acts as one in all its descendants."""
    return "super_admin" if parent_role == "super_admin" else own_role


def flattened(nodes: list[Node]) -> list[Node]:
    """The tree in reading order (each workspace before its sub-workspaces)."""
    return [each for node in nodes for each in [node, *flattened(node.children)]]


async def descendants(me: Caller, workspace_id: str) -> list[dict[str, Any]]:
    """Every sub-workspace under the workspace, at any depth, in reading order."""
    children = await or_none(me.gateway.all_items(f"/v1/workspaces/{workspace_id}/sub-workspaces"))
    found: list[dict[str, Any]] = []
    for child in children or []:
        found.append(child)
        found.extend(await descendants(me, str(child["id"])))
    return found
