"""The `atrium` command as a person types it, run in the test process by Typer's
CliRunner against the running system, with a config file of the test's own. It runs
with the asset-library tests' settings (a default plan with credits, avatar slots and
50 seats), so that it shares the system they leave running.

A command runs its requests with `asyncio.run`, so `cli` runs it in a thread of its
own: the tests stay async and check what changed through the API with the shared
`Account` helpers and `eventually`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from clients.cli.app import app
from tests.e2e.assets.conftest import Account, gateway, service_environment
from tests.e2e.conftest import RunningSystem

__all__ = ["gateway", "service_environment"]


class Atrium:
    """The command line, signed in (or not) through the test's own config file."""

    def __init__(self, config: Path, url: str) -> None:
        self.config = config
        self.url = url

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, app, list(args))

    async def login(self, email: str) -> Result:
        signed_in = await self("login", "--url", self.url, "--email", email)
        assert signed_in.exit_code == 0, signed_in.output
        return signed_in


@pytest.fixture
def cli(system: RunningSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Atrium:
    config = tmp_path / "config" / "atrium" / "config.toml"
    monkeypatch.setenv("ATRIUM_CONFIG", str(config))
    return Atrium(config, system.gateway.url)


@pytest.fixture
async def account(cli: Atrium, gateway: httpx.AsyncClient) -> Account:
    """A new account whose owner is signed in on the command line."""
    opened = await Account.open(gateway)
    await cli.login(opened.owner.email)
    return opened
