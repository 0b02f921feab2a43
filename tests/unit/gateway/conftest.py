"""The gateway in-process, in front of a stub upstream that stands for every service.
No PostgreSQL and no Kafka: the projection is seeded directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.gateway.app import Gateway, create_app

from .support import StubUpstream, gateway_settings, running_stub


@pytest.fixture
async def stub() -> AsyncIterator[StubUpstream]:
    async with running_stub() as upstream:
        yield upstream


@dataclass
class InProcessGateway:
    gateway: Gateway
    client: httpx.AsyncClient


@pytest.fixture
async def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def in_process(
    stub: StubUpstream, settings_overrides: dict[str, Any]
) -> AsyncIterator[InProcessGateway]:
    app = create_app(gateway_settings(stub.url, **settings_overrides))
    gateway: Gateway = app.state.gateway
    await gateway.upstreams.open()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield InProcessGateway(gateway=gateway, client=client)
    await gateway.upstreams.close()
    await gateway.runtime.database.dispose()
