"""Credits spent by a workspace, per day, per operation and per API key, as bar charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from clients.tree import or_none, together
from services.console.keys import days_back
from services.console.reads import role_on
from services.console.rendering import page
from services.console.session import Me

router = APIRouter()

GROUPINGS = ("day", "operation", "api_key")


@router.get("/workspaces/{workspace_id}/usage")
async def usage_page(request: Request, me: Me, workspace_id: str) -> Response:
    until = datetime.now(UTC)
    since = until - timedelta(days=days_back(request))
    within = {
        "from": since.isoformat(timespec="seconds"),
        "to": until.isoformat(timespec="seconds"),
    }
    workspace, role, keys, *reports = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        role_on(me, workspace_id),
        or_none(me.gateway.all_items(f"/v1/workspaces/{workspace_id}/api-keys")),
        *(
            or_none(
                me.gateway.get(f"/v1/workspaces/{workspace_id}/usage", group_by=group, **within)
            )
            for group in GROUPINGS
        ),
    )
    names = {str(key["id"]): str(key["name"]) for key in keys or []}
    return page(
        request,
        "usage.html",
        {
            "workspace": workspace,
            "role": role,
            "charts": {
                group: None
                if report is None
                else [
                    (names.get(str(item["key"]), str(item["key"] or "—")), int(item["credits"]))
                    for item in report["items"]
                ]
                for group, report in zip(GROUPINGS, reports, strict=True)
            },
            "days": days_back(request),
            "tab": "usage",
        },
    )
