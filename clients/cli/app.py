"""The `atrium` command: its commands, wired (each lives in the module of its subject)."""

from __future__ import annotations

import typer

from clients.cli import account, billing, people, workspaces
from clients.cli.assets import assets
from clients.cli.keys import keys

app = typer.Typer(
    name="atrium",
    help="Atrium from the command line: sign in once with `atrium login`.",
    no_args_is_help=True,
    add_completion=False,
)

app.command()(account.token)
app.command()(account.login)
app.command()(account.logout)
app.command()(workspaces.tree)
app.add_typer(people.members, name="members")
app.add_typer(people.invitations, name="invitations")
app.command()(people.invite)
app.command()(billing.allocate)
app.command()(billing.balances)
app.command()(billing.purchase)
app.command()(billing.usage)
app.add_typer(keys, name="keys")
app.add_typer(assets, name="assets")


def main() -> None:
    app()
