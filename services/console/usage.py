"""Credits spent by a workspace, per day, per operation and per API key, as bar charts."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.keys import period
from services.console.reads import or_none
from services.console.rendering import page
from services.console.session import Me

router = APIRouter()

GROUPINGS = ("day", "operation", "api_key")


@router.get("/workspaces/{workspace_id}/usage")
async def usage_page(request: Request, me: Me, workspace_id: str) -> Response:
    within = period(request)
    workspace, *reports = await asyncio.gather(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        *(
            or_none(
                me.gateway.get(f"/v1/workspaces/{workspace_id}/usage", group_by=group, **within)
            )
            for group in GROUPINGS
        ),
    )
    return page(
        request,
        "usage.html",
        {
            "workspace": workspace,
            "charts": {
                group: None
                if report is None
                else [(str(item["key"] or "—"), int(item["credits"])) for item in report["items"]]
                for group, report in zip(GROUPINGS, reports, strict=True)
            },
            "days": request.query_params.get("days", "30"),
            "tab": "usage",
        },
    )
