"""Arguments and options that many commands take, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from clients.cli.names import workspace_id

AsJson = Annotated[
    bool, typer.Option("--json", help="Print the API's JSON on stdout and nothing else.")
]
Workspace = Annotated[
    str, typer.Argument(help="The workspace's id, or its name.", callback=workspace_id)
]
Since = Annotated[str | None, typer.Option("--from", help="From this time (RFC 3339), included.")]
Until = Annotated[str | None, typer.Option("--to", help="Until this time (RFC 3339), excluded.")]
