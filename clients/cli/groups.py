"""A command group whose first argument may be the `list` command's: `atrium members
WS` lists the members, `atrium members role WS USER_ID ROLE` changes a role."""

from __future__ import annotations

from typer._click import Context
from typer.core import TyperGroup


class ListByDefault(TyperGroup):
    """Runs `list` when the first argument names none of the group's commands."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return super().parse_args(ctx, args)
