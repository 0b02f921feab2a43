"""API keys of a workspace: create (the secret shown once), rotate, revoke, and each
key's usage per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clients.gateway import Problem
from clients.tree import NOT_FOR_THIS_CALLER, or_none, together
from services.console.forms import confirmation, number, text
from services.console.reads import role_on
from services.console.rendering import done, page
from services.console.session import Caller, CheckedForm, Me

router = APIRouter()

USAGE_DAYS = 30
MAX_DAYS = 366


def days_back(request: Request) -> int:
    """How many days a usage page covers, up to today: `?days=` (default 30)."""
    try:
        return min(max(int(request.query_params.get("days", USAGE_DAYS)), 1), MAX_DAYS)
    except ValueError:
        return USAGE_DAYS


def key_period(request: Request) -> dict[str, str]:
    """The period as API-key usage takes it: first and last UTC day."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days_back(request) - 1)
    return {"from": first.isoformat(), "to": today.isoformat()}


@router.get("/workspaces/{workspace_id}/api-keys")
async def keys_page(request: Request, me: Me, workspace_id: str) -> Response:
    workspace, role, (keys, refused), usage = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        _readable_keys(me, workspace_id),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/api-usage", **key_period(request))),
    )
    return _keys(request, workspace, role, keys, usage, refused=refused)


async def _readable_keys(me: Caller, workspace_id: str) -> tuple[list[Any], Problem | None]:
    """The workspace's keys, or why the caller may not see them (their role, or API
    access turned off): the tab then says so instead of failing."""
    try:
        return await me.gateway.all_items(f"/v1/workspaces/{workspace_id}/api-keys"), None
    except Problem as problem:
        if problem.status in NOT_FOR_THIS_CALLER:
            return [], problem
        raise


def _keys(
    request: Request,
    workspace: dict[str, Any],
    role: str | None,
    keys: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    created: dict[str, Any] | None = None,
    refused: Problem | None = None,
) -> Response:
    return page(
        request,
        "keys.html",
        {
            "workspace": workspace,
            "role": role,
            "manager": role in {"super_admin", "developer"},
            "keys": keys,
            "usage": (usage or {}).get("items", []),
            "created": created,
            "refused": refused,
            "tab": "keys",
        },
        status_code=201 if created else 200,
    )


@router.post("/workspaces/{workspace_id}/api-keys")
async def create_key(request: Request, me: Me, form: CheckedForm, workspace_id: str) -> Response:
    body: dict[str, Any] = {"name": text(form, "name") or ""}
    if (expires_at := text(form, "expires_at")) is not None:
        body["expires_at"] = expires_at if "T" in expires_at else f"{expires_at}T00:00:00Z"
    if (limit := number(form, "monthly_credit_limit")) is not None:
        body["monthly_credit_limit"] = limit
    requests, seconds = number(form, "rate_requests"), number(form, "rate_period_seconds")
    if requests is not None or seconds is not None:
        body["rate_limit"] = {"requests": requests, "period_seconds": seconds}
    created = await me.gateway.post(f"/v1/workspaces/{workspace_id}/api-keys", body)
    return await _with_new_key(request, me, workspace_id, created)


@router.post("/workspaces/{workspace_id}/api-keys/{key_id}/rotate")
async def rotate_key(
    request: Request, me: Me, form: CheckedForm, workspace_id: str, key_id: str
) -> Response:
    asking = confirmation(
        request,
        form,
        question=f"Rotate the key “{text(form, 'name') or key_id}”? A new key replaces it; "
        "the old one stops working after the grace period.",
        action="Rotate the key",
    )
    if asking is not None:
        return asking
    created = await me.gateway.post(
        f"/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate",
        params={"grace_seconds": number(form, "grace_seconds")},
    )
    return await _with_new_key(request, me, workspace_id, created)


async def _with_new_key(
    request: Request, me: Me, workspace_id: str, created: dict[str, Any]
) -> Response:
    """The keys page with the new key's secret: the one time it can be read."""
    workspace, role, keys = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/api-keys"),
    )
    return _keys(request, workspace, role, keys, None, created=created)


@router.post("/workspaces/{workspace_id}/api-keys/{key_id}/revoke")
async def revoke_key(
    request: Request, me: Me, form: CheckedForm, workspace_id: str, key_id: str
) -> Response:
    asking = confirmation(
        request,
        form,
        question=f"Revoke the key “{text(form, 'name') or key_id}”? It stops working at once.",
        action="Revoke the key",
    )
    if asking is not None:
        return asking
    await me.gateway.delete(f"/v1/workspaces/{workspace_id}/api-keys/{key_id}")
    return done(f"/workspaces/{workspace_id}/api-keys", "revoked")


@router.get("/workspaces/{workspace_id}/api-keys/{key_id}")
async def key_usage_page(request: Request, me: Me, workspace_id: str, key_id: str) -> Response:
    workspace, role, keys, usage = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/api-keys"),
        me.gateway.get(
            f"/v1/workspaces/{workspace_id}/api-keys/{key_id}/usage", **key_period(request)
        ),
    )
    key = next((key for key in keys if str(key["id"]) == key_id), {"id": key_id, "name": key_id})
    return page(
        request,
        "key.html",
        {
            "workspace": workspace,
            "role": role,
            "key": key,
            "usage": usage.get("items", []),
            "tab": "keys",
        },
    )
