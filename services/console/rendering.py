"""Pages from templates, and the one way every error is shown: the problem's `detail`
(and its field errors) with the gateway's status."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from clients.gateway import Problem
from services.console.charts import bar_chart
from services.console.session import (
    CSRF_FIELD,
    TOKEN_COOKIE,
    claims_of,
    keep_session,
    page_csrf,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["bar_chart"] = bar_chart
templates.env.globals["CSRF_FIELD"] = CSRF_FIELD

ROLES = ("super_admin", "developer", "creator", "viewer")
ROLE_LABELS = {
    "super_admin": "Super Admin",
    "developer": "Developer",
    "creator": "Creator",
    "viewer": "Viewer",
}
templates.env.globals["ROLES"] = ROLES
templates.env.filters["rows_of"] = lambda items, label, value: [
    (str(item[label]), int(item.get(value) or 0)) for item in items
]
templates.env.filters["role_label"] = lambda role: ROLE_LABELS.get(str(role), "—")

NOTICES = {
    "signed-in": "You are signed in.",
    "created": "Created.",
    "saved": "Saved.",
    "deleted": "Deleted. What it held returns to its parent.",
    "deleting": "The workspace is being deleted; what it held returns to its parent.",
    "invited": "Invitation sent.",
    "revoked": "Revoked.",
    "removed": "Removed.",
    "accepted": "Invitation accepted.",
    "declined": "Invitation declined.",
    "allocated": "Allocation saved.",
    "bought": "Credits added.",
    "shared": "Shared.",
    "unshared": "No longer shared.",
}
"""What a redirect after a successful post says, by code (never text from the URL)."""


def page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    csrf, fresh_session = page_csrf(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf": csrf,
            "notice": NOTICES.get(request.query_params.get("notice", "")),
            "signed_in_as": claims_of(request.cookies.get(TOKEN_COOKIE, "")).get("email"),
            **context,
        },
        status_code=status_code,
    )
    keep_session(request, response, fresh_session)
    return response


def done(url: str, notice: str) -> RedirectResponse:
    """After a successful post: back to a page, with a notice (post/redirect/get)."""
    separator = "&" if "?" in url else "?"
    return RedirectResponse(f"{url}{separator}notice={notice}", status_code=303)


def problem_page(request: Request, problem: Problem) -> Response:
    if problem.status == 401:
        return RedirectResponse("/sign-in?expired=1", status_code=303)
    return page(
        request,
        "error.html",
        {"problem": problem, "back": request.headers.get("referer")},
        status_code=problem.status if problem.status >= 400 else 502,
    )


async def on_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, Problem)
    return problem_page(request, error)


async def on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    problem = Problem(
        error.status_code, "console", HTTPStatus(error.status_code).phrase, str(error.detail)
    )
    return page(
        request, "error.html", {"problem": problem, "back": None}, status_code=error.status_code
    )


async def on_not_signed_in(_request: Request, _error: Exception) -> Response:
    return RedirectResponse("/sign-in", status_code=303)
