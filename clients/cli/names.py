"""A workspace given by name: `atrium balances "Client A"` means the one workspace of
that name among those the caller can see (its own and, below them, their
sub-workspaces). An id is taken as it is, without a request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import typer

from clients.cli import session
from clients.gateway import Gateway


async def visible(gateway: Gateway) -> list[dict[str, Any]]:
    """The caller's workspaces and every workspace below them, level by level."""
    seen = {workspace["id"]: workspace for workspace in await gateway.all_items("/v1/workspaces")}
    level = list(seen.values())
    while level:
        below = await asyncio.gather(
            *(gateway.all_items(f"/v1/workspaces/{w['id']}/sub-workspaces") for w in level)
        )
        level = [child for children in below for child in children if child["id"] not in seen]
        seen.update((child["id"], child) for child in level)
    return list(seen.values())


def workspace_id(given: str) -> str:
    """The id of the workspace `given` names; a usage error when none or several do."""
    try:
        return str(uuid.UUID(given))
    except ValueError:
        pass
    named = [w for w in session.call(visible) if w["name"] == given]
    if not named:
        msg = f"no workspace you can see is named {given!r}"
        raise typer.BadParameter(msg)
    if len(named) > 1:
        ids = ", ".join(w["id"] for w in named)
        msg = f"{len(named)} workspaces are named {given!r} ({ids}): give its id"
        raise typer.BadParameter(msg)
    return str(named[0]["id"])


def workspace_ids(given: list[str]) -> list[str]:
    return [workspace_id(one) for one in given]


def maybe_workspace_id(given: str | None) -> str | None:
    return None if given is None else workspace_id(given)
