"""API keys as their users meet them: every service a real process, every request
through the gateway.

The gateway's per-caller and per-address budgets are lifted in these modules: tests
here poll for refusals (many 401s from one address) and race 50 requests at once, and
what they show is what keys do, not the edge's limits (tests/e2e/gateway shows those).
A key's own `rate_limit` still applies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bench.system import NO_RATE_LIMITS
from tests.e2e.conftest import RunningSystem

from .support import Api


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return NO_RATE_LIMITS


@pytest.fixture
async def api(system: RunningSystem) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as client:
        yield Api(client)
