"""What an operator scrapes: every service's `/metrics` names each metric family its
dashboard reads, and the numbers move as traffic flows through the gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest

from contracts.topics import Topic
from shared.testing import ServiceProcess, eventually
from tests.e2e.apikeys.support import Api, Person
from tests.scrapes import EVERY_SERVICE, GATEWAY_ONLY, families, moved, samples, value

from .conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

CONSUMED = {
    "identity": [Topic.BILLING_LIMITS],
    "billing": [Topic.IDENTITY_WORKSPACE, Topic.IDENTITY_MEMBERSHIP, Topic.APIKEYS_KEY],
    "assets": [Topic.IDENTITY_WORKSPACE],
    "apikeys": [Topic.IDENTITY_WORKSPACE, Topic.BILLING_LEDGER, Topic.GATEWAY_USAGE],
    "gateway": [Topic.IDENTITY_WORKSPACE, Topic.IDENTITY_MEMBERSHIP, Topic.APIKEYS_KEY],
}
"""The topics each service consumes."""


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return {"ATRIUM_METRICS_SAMPLE_SECONDS": "0.2"}


def processes(system: RunningSystem) -> dict[str, ServiceProcess]:
    every = [system.identity, system.billing, system.assets, system.apikeys, system.gateway]
    return {process.service.value: process for process in every}


async def scrape(client: httpx.AsyncClient, process: ServiceProcess) -> str:
    answer = await client.get(f"{process.url}/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


async def scrape_all(client: httpx.AsyncClient, system: RunningSystem) -> dict[str, str]:
    return {name: await scrape(client, process) for name, process in processes(system).items()}


async def test_traffic_through_the_gateway_moves_the_counters_of_every_service_it_touches(
    system: RunningSystem,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as client:
        api = Api(client)
        before = await scrape_all(client, system)
        founder = Person.new("founder")

        assert (await client.get("/v1/workspaces")).status_code == 401
        account = await api.account(founder)
        stranger = await client.get(f"/v1/workspaces/{uuid.uuid4()}", headers=founder.headers)
        assert stranger.status_code == 404
        key = await api.new_key(account["id"], founder)
        assert (await api.read_with(account["id"], key["key"])).status_code == 200

        after = await scrape_all(client, system)
        workspaces = {"route": "/v1/workspaces", "method": "POST", "status": "201"}
        for service in ("gateway", "identity"):
            requests = moved(
                before[service],
                after[service],
                "atrium_http_requests_total",
                service=service,
                **workspaces,
            )
            assert requests == 1, service
        duration = "atrium_http_request_duration_seconds_count"
        on_route = {"route": "/v1/workspaces/{workspace_id}/api-keys", "method": "POST"}
        assert moved(before["apikeys"], after["apikeys"], duration, service="apikeys", **on_route)
        gateway = {"service": "gateway"}
        gateway_moved = {
            name: moved(before["gateway"], after["gateway"], name, **labels)
            for name, labels in [
                ("atrium_gateway_authentication_refusals_total", gateway),
                (
                    "atrium_gateway_authorization_refusals_total",
                    {**gateway, "problem": "not-found"},
                ),
                ("atrium_gateway_key_verification_duration_seconds_count", gateway),
            ]
        }
        assert gateway_moved == {
            "atrium_gateway_authentication_refusals_total": 1,
            "atrium_gateway_authorization_refusals_total": 1,
            "atrium_gateway_key_verification_duration_seconds_count": 1,
        }
        assert moved(
            before["identity"],
            after["identity"],
            "atrium_events_published_total",
            service="identity",
            topic=Topic.IDENTITY_WORKSPACE.value,
        )

        async def applied_by_billing() -> float | None:
            now = await scrape(client, system.billing)
            applied = moved(
                before["billing"],
                now,
                "atrium_events_applied_total",
                service="billing",
                event_type="workspace.created",
            )
            return applied or None

        assert await eventually(applied_by_billing, what="billing to count the account") == 1

        async def usage_counted_by_apikeys() -> float | None:
            now = await scrape(client, system.apikeys)
            counted = moved(
                before["apikeys"],
                now,
                "atrium_events_applied_total",
                service="apikeys",
                event_type="api.request_recorded",
            )
            return counted or None

        assert await eventually(usage_counted_by_apikeys, what="apikeys to count the usage")


async def test_every_service_reports_each_metric_family_and_the_lag_of_what_it_consumes(
    system: RunningSystem,
) -> None:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=15) as client:
        # An account and a key: every service has then consumed something, and the
        # gateway has verified a key.
        api = Api(client)
        founder = Person.new("founder")
        account = await api.account(founder)
        key = await api.new_key(account["id"], founder)
        assert (await api.read_with(account["id"], key["key"])).status_code == 200

        for service, process in processes(system).items():

            async def lag_of_every_consumed_topic(
                service: str = service, process: ServiceProcess = process
            ) -> str | None:
                text = await scrape(client, process)
                lagging = {
                    dict(labels)["topic"]
                    for name, labels in samples(text)
                    if name == "atrium_consumer_lag" and ("service", service) in labels
                }
                return text if {t.value for t in CONSUMED[service]} <= lagging else None

            text = await eventually(
                lag_of_every_consumed_topic, what=f"{service}'s lag of every consumed topic"
            )
            expected = EVERY_SERVICE + (GATEWAY_ONLY if service == "gateway" else [])
            assert set(expected) <= families(text), service
            assert value(text, "atrium_outbox_backlog", service=service) >= 0
            parked = frozenset({("service", service), ("state", "parked")})
            assert ("atrium_parked_events", parked) in samples(text), service
