"""`atrium tree`: the workspaces a person can see, each with its settings, seats and
balances, as the tree they form."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.text import Text
from rich.tree import Tree

from clients.cli import output, session
from clients.cli.names import maybe_workspace_id
from clients.cli.options import AsJson
from clients.gateway import Gateway


async def branch(gateway: Gateway, workspace: dict[str, Any]) -> dict[str, Any]:
    """The workspace with its seats, balances and sub-workspaces, all the way down."""
    base = f"/v1/workspaces/{workspace['id']}"
    children, seats, balances = await asyncio.gather(
        gateway.all_items(f"{base}/sub-workspaces"),
        gateway.get(f"{base}/seats"),
        gateway.get(f"{base}/balances"),
    )
    below = await asyncio.gather(*(branch(gateway, child) for child in children))
    return {**workspace, "seats": seats, "balances": balances, "sub_workspaces": list(below)}


async def forest(gateway: Gateway, workspace_id: str | None) -> list[dict[str, Any]]:
    """The tree under `workspace_id`, or else under each workspace of the caller's
    whose parent the caller is not a member of."""
    if workspace_id is not None:
        return [await branch(gateway, await gateway.get(f"/v1/workspaces/{workspace_id}"))]
    mine = await gateway.all_items("/v1/workspaces")
    ids = {workspace["id"] for workspace in mine}
    tops = [workspace for workspace in mine if workspace["parent_id"] not in ids]
    return list(await asyncio.gather(*(branch(gateway, top) for top in tops)))


def label(workspace: dict[str, Any]) -> Text:
    seats, balances = workspace["seats"], workspace["balances"]
    cap = f" (cap {seats['cap']})" if seats.get("cap") is not None else ""
    shown = Text()
    shown.append(workspace["name"], style="bold")
    shown.append(f"  {workspace['id']}", style="dim")
    shown.append(
        f"\nbilling {workspace['billing_mode']} · API access "
        f"{'on' if workspace['api_access'] else 'off'} · seats {seats['used']} used, "
        f"{seats['pending']} pending, limit {seats['limit']}{cap} · generative credits "
        f"{balances['generative_credits']['balance']} · API credits "
        f"{balances['api_credits']['balance']}"
    )
    return shown


def grow(tree: Tree, workspace: dict[str, Any]) -> Tree:
    for child in workspace["sub_workspaces"]:
        grow(tree.add(label(child)), child)
    return tree


def tree(
    workspace: Annotated[
        str | None,
        typer.Argument(
            help="A workspace's id or name (default: all of yours).",
            callback=maybe_workspace_id,
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The workspace tree: name, id, billing mode, API access, seats and balances."""
    found = session.call(lambda gateway: forest(gateway, workspace))
    if as_json:
        output.print_json(found[0] if workspace is not None else found)
        return
    shown = output.console()
    for top in found:
        shown.print(grow(Tree(label(top)), top))
    if not found:
        shown.print("No workspaces yet.")
