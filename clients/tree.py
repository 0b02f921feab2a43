"""The workspace tree as a person sees it through the API: each workspace with its
sub-workspaces (all the way down), its seat use and its balances. The console's tree
page and `atrium tree` both read it here. A figure the caller may not read shows as
missing; any other failure is raised, and no read is left running after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from clients.gateway import Gateway, Problem


@dataclass
class Node:
    """A workspace of the tree, with what the caller may read of it."""

    workspace: dict[str, Any]
    role: str | None
    """The caller's role there: their own, or Super Admin from an ancestor in the tree
    (None where neither is known: the top of a tree read `under` a workspace the caller
    is no member of)."""
    seats: dict[str, Any] | None = None
    balances: dict[str, Any] | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.workspace["id"])

    def as_json(self) -> dict[str, Any]:
        """The workspace as the API gives it, with its figures and sub-workspaces."""
        return {
            **self.workspace,
            "seats": self.seats,
            "balances": self.balances,
            "sub_workspaces": [child.as_json() for child in self.children],
        }


async def together(*reads: Awaitable[Any]) -> list[Any]:
    """The answers of reads made at once. When one fails, the others are cancelled before
    the failure is raised: none is left running on a client about to be closed."""
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
access off), as opposed to a failure, which is raised."""


async def or_none(read: Awaitable[Any]) -> Any:
    """A figure the caller may not read is None; any other error is raised."""
    try:
        return await read
    except Problem as problem:
        if problem.status in NOT_FOR_THIS_CALLER:
            return None
        raise


async def workspace_tree(gateway: Gateway, under: str | None = None) -> list[Node]:
    """The tree under the workspace `under` (which must be the caller's to read), or
    else under each of the caller's workspaces whose parent is not one of theirs."""
    mine, named = await together(
        gateway.all_items("/v1/workspaces"),
        gateway.get(f"/v1/workspaces/{under}") if under is not None else _nothing(),
    )
    role_of = {str(workspace["id"]): str(workspace["role"]) for workspace in mine}
    tops = (
        [named]
        if named is not None
        else [
            workspace
            for workspace in mine
            if workspace.get("parent_id") is None or str(workspace["parent_id"]) not in role_of
        ]
    )
    return list(
        await together(
            *(_grown(gateway, top, role_of.get(str(top["id"])), role_of) for top in tops)
        )
    )


async def _nothing() -> None:
    return None


async def _grown(
    gateway: Gateway, workspace: dict[str, Any], role: str | None, role_of: dict[str, str]
) -> Node:
    base = f"/v1/workspaces/{workspace['id']}"
    children, seats, balances = await together(
        or_none(gateway.all_items(f"{base}/sub-workspaces")),
        or_none(gateway.get(f"{base}/seats")),
        or_none(gateway.get(f"{base}/balances")),
    )
    node = Node(workspace, role, seats, balances)
    node.children = list(
        await together(
            *(
                _grown(gateway, child, _role_below(role, role_of.get(str(child["id"]))), role_of)
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


async def descendants(gateway: Gateway, workspace_id: str) -> list[dict[str, Any]]:
    """Every sub-workspace under the workspace, at any depth, in reading order."""
    children = await or_none(gateway.all_items(f"/v1/workspaces/{workspace_id}/sub-workspaces"))
    found: list[dict[str, Any]] = []
    for child in children or []:
        found.append(child)
        found.extend(await descendants(gateway, str(child["id"])))
    return found
