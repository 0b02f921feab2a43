"""The person's role on a workspace, as the API reports it: it decides which controls a
page offers (the gateway still decides what is allowed). The tree and the reads made at
once are `clients.tree`'s."""

from __future__ import annotations

from services.console.session import Caller


async def role_on(me: Caller, workspace_id: str) -> str | None:
    """The caller's role on the workspace, as its member list reports it (a Super Admin
    of an ancestor appears there as an inherited Super Admin)."""
    members = await me.gateway.all_items(f"/v1/workspaces/{workspace_id}/members")
    return next((str(member["role"]) for member in members if me.is_me(member)), None)
