"""One command's work against the gateway, as the signed-in caller: the stored URL and
token, one `Gateway` for the command, and a refusal turned into exit status 1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from clients.cli import config, output
from clients.gateway import Gateway, Problem

T = TypeVar("T")

REFUSED = 1


def call(work: Callable[[Gateway], Awaitable[T]]) -> T:
    """Run `work` with a gateway of the stored login; a problem ends the command."""
    try:
        signed_in = config.load()
    except config.NotSignedInError as missing:
        output.complain(str(missing))
        raise typer.Exit(REFUSED) from None
    return call_as(signed_in, work)


def call_as(signed_in: config.SignedIn, work: Callable[[Gateway], Awaitable[T]]) -> T:
    async def with_gateway() -> T:
        async with Gateway(signed_in.token, signed_in.url) as gateway:
            return await work(gateway)

    try:
        return asyncio.run(with_gateway())
    except Problem as problem:
        output.refuse(problem)
        raise typer.Exit(REFUSED) from None
