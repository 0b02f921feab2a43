"""A principal the gateway signed is good for one request: replayed, or sent with
another body or query, to any process of the service, it is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.processes import free_port
from shared.development_tokens import development_token
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.settings import ServiceName, get_settings
from shared.testing import ServiceProcess
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]


@pytest.fixture(scope="module")
def identity_replica(system: RunningSystem, log_dir: Path) -> Iterator[ServiceProcess]:
    """A second identity process on the same schema, as a replica would be."""
    replica = ServiceProcess(
        ServiceName.IDENTITY,
        port=free_port(),
        environment=system.identity.environment,
        log_dir=log_dir,
    )
    replica.start(extra_environment={"ATRIUM_OUTBOX_RELAY_ENABLED": "false"})
    try:
        yield replica
    finally:
        replica.stop()


def principal_header(method: str, target: str, body: bytes, user_id: str) -> dict[str, str]:
    signed = sign_principal(
        Principal(user_id=user_id, email=f"{user_id}@example.com", email_verified=True),
        method=method,
        target=target,
        body=body,
        secret=get_settings().internal_secret,
    )
    return {PRINCIPAL_HEADER: signed, "content-type": "application/json"}


async def test_a_replayed_principal_is_refused_by_every_process_of_the_service(
    system: RunningSystem, identity_replica: ServiceProcess
) -> None:
    body = b'{"name": "Once"}'
    headers = principal_header("POST", "/v1/workspaces", body, f"ann-{uuid.uuid4()}")
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.post(
            f"{system.identity.url}/v1/workspaces", content=body, headers=headers
        )
        again = await client.post(
            f"{system.identity.url}/v1/workspaces", content=body, headers=headers
        )
        elsewhere = await client.post(
            f"{identity_replica.url}/v1/workspaces", content=body, headers=headers
        )

    assert first.status_code == 201, first.text
    for replayed in (again, elsewhere):
        assert replayed.status_code == 401, replayed.text
        assert replayed.headers["content-type"] == "application/problem+json"
        assert replayed.json()["type"] == "unauthenticated"


async def test_a_principal_sent_with_another_body_or_query_is_refused(
    system: RunningSystem,
) -> None:
    user_id = f"bob-{uuid.uuid4()}"
    signed_body = b'{"name": "Small"}'
    async with httpx.AsyncClient(base_url=system.identity.url, timeout=10) as client:
        other_body = await client.post(
            "/v1/workspaces",
            content=b'{"name": "Something else entirely"}',
            headers=principal_header("POST", "/v1/workspaces", signed_body, user_id),
        )
        other_query = await client.get(
            "/v1/workspaces?limit=200",
            headers=principal_header("GET", "/v1/workspaces?limit=1", b"", user_id),
        )
        listed = await client.get(
            "/v1/workspaces", headers=principal_header("GET", "/v1/workspaces", b"", user_id)
        )

    assert other_body.status_code == 401, other_body.text
    assert other_query.status_code == 401, other_query.text
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


async def test_requests_through_the_gateway_are_signed_for_what_they_carry(
    system: RunningSystem,
) -> None:
    token = development_token("cyd@example.com", get_settings())
    async with httpx.AsyncClient(
        base_url=system.gateway.url, timeout=10, headers={"authorization": f"Bearer {token}"}
    ) as client:
        created = await client.post("/v1/workspaces", json={"name": "Signed"})
        listed = await client.get("/v1/workspaces?limit=200")
        renamed = await client.patch(
            f"/v1/workspaces/{created.json()['id']}", json={"name": "Signed again"}
        )

    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text
    assert created.json()["id"] in {item["id"] for item in listed.json()["items"]}
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Signed again"
