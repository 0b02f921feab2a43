"""The workspace tree and a workspace's own page: its figures, its sub-workspaces, and
the "gear" (settings and allocations), creating, renaming and deleting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clients.gateway import new_idempotency_key
from clients.tree import flattened, or_none, together, workspace_tree
from services.console.forms import confirmation, flag, number, text
from services.console.reads import role_on
from services.console.rendering import done, page
from services.console.session import Caller, CheckedForm, Me

router = APIRouter()

POOLS = ("generative_credits", "api_credits", "avatar_slots", "seats")
CREDIT_POOLS = ("generative_credits", "api_credits")
MAX_MEMBERS_AT_CREATION = 5


@router.get("/workspaces")
async def tree(request: Request, me: Me) -> Response:
    roots, invitations = await together(
        workspace_tree(me.gateway), or_none(me.gateway.all_items("/v1/invitations"))
    )
    return page(
        request,
        "tree.html",
        {"rows": flattened(roots), "invitations": invitations or []},
    )


@router.post("/workspaces")
async def create_root(me: Me, form: CheckedForm) -> Response:
    body = {"name": text(form, "name") or "", "image_url": text(form, "image_url")}
    created = await me.gateway.post(
        "/v1/workspaces", {key: value for key, value in body.items() if value is not None}
    )
    return done(f"/workspaces/{created['id']}", "created")


@router.get("/workspaces/{workspace_id}")
async def workspace_page(request: Request, me: Me, workspace_id: str) -> Response:
    workspace, role, children, seats, balances, allocation = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/sub-workspaces"),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/seats")),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/balances")),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/allocations")),
    )
    return page(
        request,
        "workspace.html",
        {
            "workspace": workspace,
            "role": role,
            "admin": role == "super_admin",
            "children": children,
            "seats": seats,
            "balances": balances,
            "allocation": allocation,
            "pools": POOLS,
            "credit_pools": CREDIT_POOLS,
            "member_rows": range(MAX_MEMBERS_AT_CREATION),
            "tab": "overview",
            "purchase_key": new_idempotency_key(),
        },
    )


@router.post("/workspaces/{workspace_id}/sub-workspaces")
async def create_sub_workspace(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    members = [
        {"email": email, "role": text(form, f"member_role_{row}") or "viewer"}
        for row in range(MAX_MEMBERS_AT_CREATION)
        if (email := text(form, f"member_email_{row}"))
    ]
    body: dict[str, Any] = {
        "name": text(form, "name") or "",
        "billing_mode": text(form, "billing_mode") or "parent",
        "api_access": flag(form, "api_access"),
        "strict_quota": flag(form, "strict_quota"),
        "members": members,
    }
    if image_url := text(form, "image_url"):
        body["image_url"] = image_url
    created = await me.gateway.post(f"/v1/workspaces/{workspace_id}/sub-workspaces", body)
    return done(f"/workspaces/{created['id']}", "created")


@router.post("/workspaces/{workspace_id}/settings")
async def change_settings(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    body: dict[str, Any] = {
        "name": text(form, "name") or "",
        "image_url": text(form, "image_url"),
    }
    if text(form, "settings") is not None:
        body |= {
            "api_access": flag(form, "api_access"),
            "strict_quota": flag(form, "strict_quota"),
        }
        billing_mode = text(form, "billing_mode")
        if billing_mode and billing_mode != text(form, "current_billing_mode"):
            body["billing_mode"] = billing_mode
    await me.gateway.patch(f"/v1/workspaces/{workspace_id}", body)
    return done(f"/workspaces/{workspace_id}", "saved")


@router.post("/workspaces/{workspace_id}/allocations")
async def allocate(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    body = {pool: amount for pool in POOLS if (amount := number(form, pool)) is not None}
    await me.gateway.put(f"/v1/workspaces/{workspace_id}/allocations", body)
    return done(f"/workspaces/{workspace_id}", "allocated")


@router.post("/workspaces/{workspace_id}/purchases")
async def buy(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    await me.gateway.post(
        f"/v1/workspaces/{workspace_id}/purchases",
        {"pool": text(form, "pool"), "quantity": number(form, "quantity")},
        idempotency_key=text(form, "idempotency_key") or new_idempotency_key(),
    )
    return done(f"/workspaces/{workspace_id}", "bought")


@router.post("/workspaces/{workspace_id}/delete")
async def delete(request: Request, me: Me, form: CheckedForm, workspace_id: str) -> Response:
    workspace = await me.gateway.get(f"/v1/workspaces/{workspace_id}")
    asking = confirmation(
        request,
        form,
        question=f"Delete “{workspace['name']}”?",
        action="Delete the workspace",
        preview=await _returned_to_parent(me, workspace),
    )
    if asking is not None:
        return asking
    await me.gateway.delete(
        f"/v1/workspaces/{workspace_id}", cascade="true" if flag(form, "cascade") else None
    )
    parent = workspace.get("parent_id")
    return done(f"/workspaces/{parent}" if parent else "/workspaces", "deleting")


async def _returned_to_parent(me: Caller, workspace: dict[str, Any]) -> dict[str, Any]:
    """What a deletion gives back to the parent: the unspent credits and the avatar
    slots of the workspace, and how many sub-workspaces go with it."""
    workspace_id = str(workspace["id"])
    balances, allocation, children = await together(
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/balances")),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/allocations")),
        or_none(me.gateway.all_items(f"/v1/workspaces/{workspace_id}/sub-workspaces")),
    )
    return {"balances": balances, "allocation": allocation, "children": children or []}
