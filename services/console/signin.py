"""Signing in and out: by email with a development token (when the console allows it),
or with a token pasted from the identity provider (how production's RS256 tokens
arrive). The token is tried against the gateway before the session starts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from clients.gateway import Gateway, Problem
from services.console.forms import text
from services.console.rendering import page
from services.console.session import (
    TOKEN_COOKIE,
    CheckedForm,
    checked_form,
    settings_of,
    start_session,
)
from shared.development_tokens import development_token
from shared.settings import InsecureSettingsError, installation_settings

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse(
        "/workspaces" if request.cookies.get(TOKEN_COOKIE) else "/sign-in", status_code=303
    )


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    expired = request.query_params.get("expired") is not None
    return _sign_in_form(request, "Your session has ended: sign in again." if expired else None)


@router.post("/sign-in")
async def sign_in(request: Request, form: CheckedForm) -> Response:
    settings = settings_of(request)
    email = text(form, "email")
    token = text(form, "token")
    if email is not None and settings.development_sign_in:
        try:
            token = _development_token(email)
        except InsecureSettingsError as refused:
            return _sign_in_form(request, str(refused), status_code=500)
    if token is None:
        return _sign_in_form(request, "Give a token to sign in with.", status_code=422)
    try:
        async with Gateway(token, settings.gateway_url) as gateway:
            await gateway.get("/v1/workspaces", limit=1)
    except Problem as problem:
        return _sign_in_form(
            request, problem.detail or problem.title, status_code=problem.status or 502
        )
    response = RedirectResponse("/workspaces?notice=signed-in", status_code=303)
    start_session(response, settings, token)
    return response


@router.post("/sign-out", dependencies=[Depends(checked_form)])
async def sign_out(request: Request) -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    start_session(response, settings_of(request), None)
    return response


def _development_token(email: str) -> str:
    """What `atrium token EMAIL` prints, for this installation."""
    settings = installation_settings()
    settings.refuse_insecure(["jwt_secret"], refusing="the console cannot sign a token")
    return development_token(email, settings)


def _sign_in_form(request: Request, error: str | None, *, status_code: int = 200) -> Response:
    return page(
        request,
        "sign_in.html",
        {"error": error, "development": settings_of(request).development_sign_in},
        status_code=status_code if status_code >= 400 or error is None else 200,
    )
