"""A workspace's asset library: its own and shared-in assets, creating one, and sharing
an asset with chosen sub-workspaces (or ending a share)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clients.gateway import Problem
from clients.tree import descendants, or_none, together
from services.console.forms import confirmation, text
from services.console.reads import role_on
from services.console.rendering import done, page
from services.console.session import Caller, CheckedForm, Me

router = APIRouter()

KINDS = ("avatar", "voice", "brand_kit", "template")


@router.get("/workspaces/{workspace_id}/assets")
async def library(request: Request, me: Me, workspace_id: str) -> Response:
    workspace, role, assets, targets = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/assets"),
        descendants(me.gateway, workspace_id),
    )
    admin = role == "super_admin"
    shares = await together(
        *(_shares(me, workspace_id, asset) if admin else _none() for asset in assets)
    )
    return page(
        request,
        "assets.html",
        {
            "workspace": workspace,
            "role": role,
            "admin": admin,
            "editor": role in {"super_admin", "developer", "creator"},
            "assets": list(zip(assets, shares, strict=True)),
            "targets": targets,
            "names": {str(target["id"]): target["name"] for target in targets},
            "kinds": KINDS,
            "tab": "assets",
        },
    )


async def _shares(me: Caller, workspace_id: str, asset: dict[str, Any]) -> list[Any] | None:
    if asset.get("shared_from"):
        return None
    found: list[Any] | None = await or_none(
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/assets/{asset['id']}/shares")
    )
    return found


async def _none() -> None:
    return None


@router.post("/workspaces/{workspace_id}/assets")
async def create_asset(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    body: dict[str, Any] = {"kind": text(form, "kind") or "", "name": text(form, "name") or ""}
    if (written := text(form, "properties")) is not None:
        try:
            body["properties"] = json.loads(written)
        except ValueError as error:
            raise Problem(
                422,
                "invalid-properties",
                "Properties are not JSON",
                f"Properties must be a JSON object: {error}.",
                [{"field": "properties", "message": str(error)}],
            ) from error
    await me.gateway.post(f"/v1/workspaces/{workspace_id}/assets", body)
    return done(f"/workspaces/{workspace_id}/assets", "created")


@router.post("/workspaces/{workspace_id}/assets/{asset_id}/shares")
async def share(me: Me, form: CheckedForm, workspace_id: str, asset_id: str) -> Response:
    targets = [value for value in form.getlist("workspace_ids") if isinstance(value, str)]
    await me.gateway.post(
        f"/v1/workspaces/{workspace_id}/assets/{asset_id}/shares", {"workspace_ids": targets}
    )
    return done(f"/workspaces/{workspace_id}/assets", "shared")


@router.post("/workspaces/{workspace_id}/assets/{asset_id}/shares/{target_id}/remove")
async def unshare(
    request: Request, me: Me, form: CheckedForm, workspace_id: str, asset_id: str, target_id: str
) -> Response:
    asking = confirmation(
        request,
        form,
        question=f"Stop sharing “{text(form, 'name') or asset_id}” with "
        f"{text(form, 'target') or target_id}? It loses the asset at once.",
        action="Stop sharing",
    )
    if asking is not None:
        return asking
    await me.gateway.delete(f"/v1/workspaces/{workspace_id}/assets/{asset_id}/shares/{target_id}")
    return done(f"/workspaces/{workspace_id}/assets", "unshared")
