"""`atrium tree`: the workspaces a person can see, each with its settings, seats and
balances, as the tree they form."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from clients.cli import output, session
from clients.cli.names import maybe_workspace_id
from clients.cli.options import AsJson
from clients.tree import Node, workspace_tree

MISSING = "—"
"""A figure the caller may not read."""


def label(node: Node) -> Text:
    workspace, seats, balances = node.workspace, node.seats, node.balances
    if seats is None:
        seat_use = f"seats {MISSING}"
    else:
        cap = f" (cap {seats['cap']})" if seats.get("cap") is not None else ""
        seat_use = (
            f"seats {seats['used']} used, {seats['pending']} pending, limit {seats['limit']}{cap}"
        )
    if balances is None:
        balance = f"generative credits {MISSING} · API credits {MISSING}"
    else:
        balance = (
            f"generative credits {balances['generative_credits']['balance']} · API credits "
            f"{balances['api_credits']['balance']}"
        )
    shown = Text()
    shown.append(workspace["name"], style="bold")
    shown.append(f"  {workspace['id']}", style="dim")
    shown.append(
        f"\nbilling {workspace['billing_mode']} · API access "
        f"{'on' if workspace['api_access'] else 'off'} · {seat_use} · {balance}"
    )
    return shown


def grow(tree: Tree, node: Node) -> Tree:
    for child in node.children:
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
    found = session.call(lambda gateway: workspace_tree(gateway, under=workspace))
    if as_json:
        trees = [top.as_json() for top in found]
        output.print_json(trees[0] if workspace is not None else trees)
        return
    shown = output.console()
    for top in found:
        shown.print(grow(Tree(label(top)), top))
    if not found:
        shown.print("No workspaces yet.")
