"""Reading posted forms, and asking before a destructive action.

Values go to the API as typed as the form allows (a number field that is not a number
is sent as written), so that the API's own validation answers with its field errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from services.console.rendering import page
from services.console.session import CSRF_FIELD

CONFIRMED = "confirmed"


def text(form: FormData, name: str) -> str | None:
    """A text field, None when left empty."""
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def flag(form: FormData, name: str) -> bool:
    """A checkbox: present when ticked."""
    return form.get(name) is not None


def number(form: FormData, name: str) -> int | str | None:
    value = text(form, name)
    if value is None:
        return None
    try:
        return int(value.replace(",", "").replace("_", ""))
    except ValueError:
        return value


def confirmation(
    request: Request,
    form: FormData,
    *,
    question: str,
    action: str,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse | None:
    """The page that asks before a destructive action (posting the same form again,
    confirmed), or None once it was confirmed."""
    if form.get(CONFIRMED) == "yes":
        return None
    fields = [
        (name, value)
        for name, value in form.multi_items()
        if name != CSRF_FIELD and isinstance(value, str)
    ]
    return page(
        request,
        "confirm.html",
        {
            "question": question,
            "action": request.url.path,
            "button": action,
            "fields": fields,
            "preview": preview,
            "back": request.headers.get("referer"),
        },
    )
