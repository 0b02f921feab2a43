"""The test session's own PostgreSQL and Kafka, started once and only when a test
needs them; stopped at the end whatever happened. The session runs inside the sandbox
as its services do: with the sandbox's settings (and random secrets) in its
environment, so that `get_settings()`, and what signs with it (`SignedAs`,
`development_token`), agree with the services under test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.sandbox import Sandbox, sandbox
from shared.db import asyncpg_url, tls_arguments
from shared.settings import Settings, get_settings


@pytest.fixture(scope="session")
def atrium() -> Iterator[Sandbox]:
    with sandbox("atrium-tests") as running:
        before = {name: os.environ.get(name) for name in running.environment}
        os.environ.update(running.environment)
        get_settings.cache_clear()
        try:
            yield running
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(atrium: Sandbox) -> Settings:
    return atrium.settings


@pytest.fixture(scope="session")
async def admin_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A superuser connection, for tests that look behind a service's back."""
    url = settings.database_url
    engine = create_async_engine(asyncpg_url(url), connect_args=tls_arguments(url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service-logs")
