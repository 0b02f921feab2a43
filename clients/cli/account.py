"""Signing in: `atrium token` prints a development token, `atrium login` checks a token
against the gateway and keeps it, `atrium logout` forgets it."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from clients.cli import config, output, session
from clients.cli.options import AsJson
from clients.gateway import DEFAULT_URL, Gateway
from shared.development_tokens import TOKEN_LIFETIME_SECONDS, development_token
from shared.settings import InsecureSettingsError, installation_settings


def minted(email: str, *, refusing: str, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    """A development token for `email`, signed with `ATRIUM_JWT_SECRET` or, when that is
    not set, with the secret `make run` generated for this installation; refused (exit
    1) where neither is there, as a production system signs its tokens elsewhere."""
    settings = installation_settings()
    try:
        settings.refuse_insecure(["jwt_secret"], refusing=refusing)
    except InsecureSettingsError as refused:
        output.complain(str(refused))
        raise typer.Exit(session.REFUSED) from None
    return development_token(email, settings, lifetime=lifetime)


def token(
    email: str,
    hours: Annotated[float, typer.Option(help="Lifetime in hours.")] = 12.0,
) -> None:
    """Print a development token for EMAIL."""
    signed = minted(email, refusing="atrium token cannot sign", lifetime=int(hours * 3600))
    sys.stdout.write(signed + "\n")


def login(
    url: Annotated[
        str | None, typer.Option(help="The gateway (default: the last login's, or local).")
    ] = None,
    email: Annotated[
        str | None, typer.Option(help="Sign in with a development token for EMAIL.")
    ] = None,
    pasted: Annotated[
        str | None, typer.Option("--token", help="Sign in with this token (production).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Sign in: check the token with the gateway, then keep it for the next commands."""
    if (email is None) == (pasted is None):
        raise typer.BadParameter("give one of them", param_hint="--email / --token")
    signed_in = config.SignedIn(
        url=url or config.stored_url() or DEFAULT_URL,
        token=pasted or minted(str(email), refusing="atrium login --email cannot sign"),
    )

    async def check(gateway: Gateway) -> Any:
        return await gateway.get("/v1/workspaces", limit=200)

    workspaces = session.call_as(signed_in, check)
    path = config.save(signed_in)
    if as_json:
        output.print_json(workspaces)
        return
    count = len(workspaces["items"])
    more = "+" if workspaces.get("next_cursor") else ""
    output.console().print(
        f"Signed in to {signed_in.url}: member of {count}{more} workspace(s). Token kept in {path}."
    )


def logout(as_json: AsJson = False) -> None:
    """Forget the stored token."""
    path = config.config_path()
    had_one = config.forget()
    if as_json:
        return
    output.console().print(f"Signed out ({path} removed)." if had_one else "Not signed in.")
