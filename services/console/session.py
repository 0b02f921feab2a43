"""Who is signed in, and the forms they may post.

Two HttpOnly, SameSite=Strict cookies make a session: a random session id, and the
person's token (a development token or a pasted one). Every form carries a CSRF token,
an HMAC of the session id under the console's key: a post from another site, or one
that lost its token, is refused with 403 before anything reaches the gateway. The token
is only decoded (not verified) here to greet the person and find them in member lists:
the gateway verifies it on every request, and its answer is the judge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from starlette.datastructures import FormData

from clients.gateway import Gateway
from services.console.settings import ConsoleSettings

SESSION_COOKIE = "atrium_console_session"
TOKEN_COOKIE = "atrium_console_token"  # noqa: S105 (a cookie's name)
CSRF_FIELD = "csrf"


def settings_of(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def session_id(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def csrf_token(settings: ConsoleSettings, session: str) -> str:
    return hmac.new(settings.session_key.encode(), session.encode(), hashlib.sha256).hexdigest()


def csrf_for(request: Request) -> str:
    """The CSRF token of this request's session (none before a session exists: a form
    posted then is refused)."""
    session = session_id(request)
    return csrf_token(settings_of(request), session) if session else ""


def _cookie_options(settings: ConsoleSettings) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": settings.cookie_secure, "path": "/"}


def start_session(response: Response, settings: ConsoleSettings, token: str | None) -> None:
    """A new session id (so that no CSRF token issued before it stays valid) and the
    token, or none (signed out)."""
    response.set_cookie(SESSION_COOKIE, secrets.token_urlsafe(24), **_cookie_options(settings))
    if token is None:
        response.delete_cookie(TOKEN_COOKIE, path="/")
    else:
        response.set_cookie(TOKEN_COOKIE, token, **_cookie_options(settings))


def page_csrf(request: Request) -> tuple[str, str | None]:
    """The CSRF token for the forms of a page, and a session id to set with the page
    when the visitor has none yet (so that the sign-in form is protected too)."""
    session = session_id(request)
    fresh = None if session else secrets.token_urlsafe(24)
    return csrf_token(settings_of(request), session or str(fresh)), fresh


def keep_session(request: Request, response: Response, fresh: str | None) -> None:
    if fresh is not None:
        response.set_cookie(SESSION_COOKIE, fresh, **_cookie_options(settings_of(request)))


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = csrf_for(request)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(
            status_code=403,
            detail="This form was not sent from a page of this session "
            "(it is stale or forged): reload the page and send it again.",
        )
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


class NotSignedIn(Exception):  # noqa: N818 (a state, not a failure)
    """The request needs a signed-in person and has no token."""


@dataclass(frozen=True)
class Caller:
    """The signed-in person, and the gateway as them."""

    gateway: Gateway
    user_id: str
    email: str

    def is_me(self, member: dict[str, Any]) -> bool:
        return str(member.get("user_id")) == self.user_id or (
            bool(self.email) and str(member.get("email") or "").lower() == self.email
        )


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the gateway verifies); empty when it is not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


async def signed_in(request: Request) -> AsyncIterator[Caller]:
    token = request.cookies.get(TOKEN_COOKIE)
    if not token:
        raise NotSignedIn
    claims = claims_of(token)
    async with Gateway(token, settings_of(request).gateway_url) as gateway:
        yield Caller(
            gateway, str(claims.get("sub", "")), str(claims.get("email", "")).strip().lower()
        )


Me = Annotated[Caller, Depends(signed_in)]
