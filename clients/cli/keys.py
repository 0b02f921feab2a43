"""`atrium keys`: a workspace's API keys, listed, created and rotated (the secret shown
that once only), revoked, and their usage per day."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from clients.cli import output, session
from clients.cli.charts import Bar, bar_chart
from clients.cli.options import AsJson, Since, Until, Workspace

keys = typer.Typer(no_args_is_help=True, help="A workspace's API keys.")


@keys.command("list")
def list_keys(workspace: Workspace, as_json: AsJson = False) -> None:
    """List the keys (never their secrets)."""
    found = session.call(lambda gateway: gateway.all_items(f"/v1/workspaces/{workspace}/api-keys"))
    output.print_list(
        found,
        as_json=as_json,
        title=f"API keys of {workspace}",
        headers=("id", "name", "key", "status", "created", "expires", "last used"),
        row=lambda key: (
            key["id"],
            key["name"],
            f"{key['prefix']}…{key['last4']}",
            key["status"],
            key["created_at"],
            key["expires_at"],
            key["last_used_at"],
        ),
    )


@keys.command("create")
def create_key(
    workspace: Workspace,
    name: str,
    expires_at: Annotated[
        str | None, typer.Option(help="When it stops working (RFC 3339).")
    ] = None,
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests it may make per --rate-period.")
    ] = None,
    rate_period: Annotated[int, typer.Option(help="Seconds of --rate-limit.")] = 60,
    monthly_credit_limit: Annotated[
        int | None, typer.Option(help="API credits it may spend per month.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key and print its secret, once."""
    body: dict[str, Any] = {"name": name}
    if expires_at is not None:
        body["expires_at"] = expires_at
    if rate_limit is not None:
        body["rate_limit"] = {"requests": rate_limit, "period_seconds": rate_period}
    if monthly_credit_limit is not None:
        body["monthly_credit_limit"] = monthly_credit_limit
    created = session.call(
        lambda gateway: gateway.post(f"/v1/workspaces/{workspace}/api-keys", body)
    )
    show_secret(created, "created", as_json=as_json)


@keys.command("rotate")
def rotate_key(
    workspace: Workspace,
    key_id: str,
    grace_seconds: Annotated[int, typer.Option(help="How long the old key keeps working.")] = 0,
    as_json: AsJson = False,
) -> None:
    """Replace a key by a new one with the same settings, and print its secret, once."""
    rotated = session.call(
        lambda gateway: gateway.post(
            f"/v1/workspaces/{workspace}/api-keys/{key_id}/rotate",
            params={"grace_seconds": grace_seconds},
        )
    )
    show_secret(rotated, f"rotated from {key_id}", as_json=as_json)


def show_secret(key: dict[str, Any], what: str, *, as_json: bool) -> None:
    if as_json:
        output.print_json(key)
        return
    shown = output.console()
    shown.print(f"Key {key['name']} {what}: {key['id']}.", markup=False)
    shown.print("Its secret, shown this once only (store it now):")
    shown.out(key["key"])


@keys.command("revoke")
def revoke_key(workspace: Workspace, key_id: str, as_json: AsJson = False) -> None:
    """Revoke a key: it stops working at once."""
    session.call(lambda gateway: gateway.delete(f"/v1/workspaces/{workspace}/api-keys/{key_id}"))
    if not as_json:
        output.console().print(f"Key {key_id} revoked.")


@keys.command("usage")
def key_usage(
    workspace: Workspace,
    key_id: Annotated[
        str | None, typer.Argument(help="One key (default: all of the workspace's).")
    ] = None,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
) -> None:
    """Requests, errors and credits spent per day, as a bar chart of the requests."""
    path = (
        f"/v1/workspaces/{workspace}/api-keys/{key_id}/usage"
        if key_id
        else f"/v1/workspaces/{workspace}/api-usage"
    )
    report = session.call(lambda gateway: gateway.get(path, **{"from": since, "to": until}))
    if as_json:
        output.print_json(report)
        return
    bars = [
        Bar(day["date"], day["requests"], (day["errors"], day["credits_spent"]))
        for day in report["items"]
    ]
    output.console().print(
        bar_chart(
            bars,
            title=f"Requests with {'key ' + key_id if key_id else 'the keys of ' + workspace}",
            headers=("day", "requests", "errors", "credits"),
        )
    )
