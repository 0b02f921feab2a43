"""The gateway's own metrics, scraped from it: its refusals by kind and the cost of
verifying keys, and its requests counted under the route table's templates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.gateway.keys import KeyRateLimit
from tests.scrapes import moved

from .conftest import InProcessGateway
from .support import bearer
from .test_api_keys import WORKSPACE, seed_key


@pytest.fixture
async def settings_overrides() -> dict[str, Any]:
    return {"address_refusals_burst": 3, "address_refusals_per_second": 0.01}


async def scrape(in_process: InProcessGateway) -> str:
    answer = await in_process.client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


async def test_refusals_are_counted_by_kind_and_requests_by_route_template(
    in_process: InProcessGateway,
) -> None:
    client = in_process.client
    before = await scrape(in_process)
    workspace = f"/v1/workspaces/{uuid.uuid4()}"

    assert (await client.get(workspace)).status_code == 401
    assert (await client.get(workspace, headers=bearer("ann"))).status_code == 404
    assert (await client.get("/v1/no-such-route")).status_code == 404
    assert (await client.get(workspace)).status_code == 401
    not_a_token = {"authorization": "Bearer not-a-token"}
    assert (await client.get(workspace, headers=not_a_token)).status_code == 429
    after = await scrape(in_process)

    gateway = {"service": "gateway"}
    assert moved(before, after, "atrium_gateway_authentication_refusals_total", **gateway) == 2
    assert (
        moved(
            before,
            after,
            "atrium_gateway_authorization_refusals_total",
            **gateway,
            problem="not-found",
        )
        == 1
    )
    assert (
        moved(before, after, "atrium_gateway_rate_limit_refusals_total", **gateway, limit="address")
        == 1
    )
    template = {**gateway, "route": "/v1/workspaces/{workspace_id}", "method": "GET"}
    assert moved(before, after, "atrium_http_requests_total", **template, status="401") == 2
    assert moved(before, after, "atrium_http_requests_total", **template, status="404") == 1
    assert moved(before, after, "atrium_http_requests_total", **template, status="429") == 1
    unmatched = {**gateway, "route": "unmatched", "method": "GET", "status": "404"}
    assert moved(before, after, "atrium_http_requests_total", **unmatched) == 1


async def test_key_verifications_are_timed_and_a_key_past_its_rate_limit_is_counted(
    in_process: InProcessGateway,
) -> None:
    key, _ = seed_key(in_process, rate_limit=KeyRateLimit(requests=1, period_seconds=60))
    path = f"/v1/workspaces/{WORKSPACE}/balances"
    before = await scrape(in_process)

    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 200
    assert (await in_process.client.get(path, headers={"x-api-key": key})).status_code == 429
    after = await scrape(in_process)

    gateway = {"service": "gateway"}
    verifications = "atrium_gateway_key_verification_duration_seconds_count"
    assert moved(before, after, verifications, **gateway) == 2
    limited = "atrium_gateway_rate_limit_refusals_total"
    assert moved(before, after, limited, **gateway, limit="key") == 1
