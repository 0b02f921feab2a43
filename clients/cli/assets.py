"""`atrium assets`: a workspace's library, and sharing an asset with other workspaces
of the account."""

from __future__ import annotations

from typing import Annotated

import typer

from clients.cli import output, session
from clients.cli.names import workspace_ids
from clients.cli.options import AsJson, Workspace

assets = typer.Typer(no_args_is_help=True, help="A workspace's asset library.")


@assets.command("list")
def list_assets(
    workspace: Workspace,
    kind: Annotated[str | None, typer.Option(help="avatar, voice, brand_kit or template.")] = None,
    as_json: AsJson = False,
) -> None:
    """List the workspace's own assets and those shared with it."""
    found = session.call(
        lambda gateway: gateway.all_items(f"/v1/workspaces/{workspace}/assets", kind=kind)
    )
    output.print_list(
        found,
        as_json=as_json,
        title=f"Assets of {workspace}",
        headers=("id", "kind", "name", "shared from", "created"),
        row=lambda a: (a["id"], a["kind"], a["name"], a.get("shared_from"), a["created_at"]),
    )


@assets.command("share")
def share_asset(
    workspace: Workspace,
    asset_id: str,
    to: Annotated[
        list[str],
        typer.Option(
            "--to",
            help="A workspace to share it with, by id or name (repeatable).",
            callback=workspace_ids,
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """Share an asset with workspaces of the same account, all or none of them."""
    shares = session.call(
        lambda gateway: gateway.post(
            f"/v1/workspaces/{workspace}/assets/{asset_id}/shares", {"workspace_ids": to}
        )
    )
    if as_json:
        output.print_json(shares)
        return
    output.console().print(
        output.table(
            f"Asset {asset_id} is shared with",
            ("workspace id", "since"),
            ((share["workspace_id"], share["shared_at"]) for share in shares["items"]),
        )
    )


@assets.command("unshare")
def unshare_asset(
    workspace: Workspace, asset_id: str, target: str, as_json: AsJson = False
) -> None:
    """End an asset's share with TARGET (at once: its very next request)."""
    session.call(
        lambda gateway: gateway.delete(
            f"/v1/workspaces/{workspace}/assets/{asset_id}/shares/{target}"
        )
    )
    if not as_json:
        output.console().print(f"Asset {asset_id} no longer shared with {target}.")
