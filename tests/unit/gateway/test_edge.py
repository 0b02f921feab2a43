"""What every request meets at the edge: one error language, limits, and a service
that hears only what the gateway vouches for."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from contracts.permissions import Role
from services.gateway.projections import Membership, WorkspaceNode, WorkspaceStatus
from shared.principal import PRINCIPAL_HEADER

from .conftest import InProcessGateway
from .support import StubUpstream, bearer

WORKSPACE = uuid.uuid4()


def seed(in_process: InProcessGateway, *, status: WorkspaceStatus = WorkspaceStatus.ACTIVE) -> None:
    in_process.gateway.projection.load(
        [WorkspaceNode(WORKSPACE, None, WORKSPACE, api_access=True, status=status)],
        [Membership(WORKSPACE, "ann", Role.SUPER_ADMIN)],
    )


def assert_problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"]
    assert response.json()["type"] == slug


async def test_an_unknown_route_is_a_404_problem(in_process: InProcessGateway) -> None:
    for path in ("/v1/nothing", "/nothing", f"/v1/workspaces/{WORKSPACE}/nothing"):
        assert_problem(await in_process.client.get(path, headers=bearer("ann")), 404, "not-found")


async def test_a_known_path_with_another_method_is_a_405_problem(
    in_process: InProcessGateway,
) -> None:
    response = await in_process.client.put(f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"))
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
async def test_a_method_no_path_takes_is_a_405_that_names_the_paths_own_methods(
    in_process: InProcessGateway, method: str
) -> None:
    response = await in_process.client.request(method, "/v1/workspaces", headers=bearer("ann"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_the_service_hears_only_the_principal_the_gateway_signed(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed(in_process)
    response = await in_process.client.post(
        f"/v1/workspaces/{WORKSPACE}/invitations?x=1&x=2",
        headers={
            **bearer("ann"),
            "x-api-key": "atr_smuggled",
            PRINCIPAL_HEADER: "forged.principal",
            "x-request-id": "req-123",
            "idempotency-key": "k1",
        },
        json={"email": "bo@example.test", "role": "viewer"},
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-upstream"] == "stub"
    [forwarded] = stub.forwarded
    assert "authorization" not in forwarded.headers
    assert "x-api-key" not in forwarded.headers
    assert forwarded.principal.user_id == "ann"
    assert forwarded.principal.role is Role.SUPER_ADMIN
    assert forwarded.headers["x-request-id"] == "req-123"
    assert forwarded.headers["idempotency-key"] == "k1"
    assert forwarded.query == "x=1&x=2"
    assert forwarded.body == b'{"email":"bo@example.test","role":"viewer"}'


@pytest.mark.parametrize(
    "limit", ["0", "201", "-1", "ten", "", "1.5", "%C2%B2", "%D9%A3", "1" * 5000, " 5"]
)
async def test_a_list_limit_outside_1_to_200_is_a_422_problem(
    in_process: InProcessGateway, stub: StubUpstream, limit: str
) -> None:
    response = await in_process.client.get(f"/v1/workspaces?limit={limit}", headers=bearer("ann"))
    assert_problem(response, 422, "validation-failed")
    assert response.json()["errors"][0]["field"] == "limit"
    assert stub.forwarded == []


@pytest.mark.parametrize("limit", ["1", "200", "0050"])
async def test_a_list_limit_within_bounds_goes_through(
    in_process: InProcessGateway, limit: str
) -> None:
    response = await in_process.client.get(f"/v1/workspaces?limit={limit}", headers=bearer("ann"))
    assert response.status_code == 200


@pytest.mark.parametrize("workspace", [WORKSPACE, uuid.uuid4()], ids=["member", "stranger"])
async def test_a_spend_without_its_idempotency_key_is_a_422_wherever_it_is_sent(
    in_process: InProcessGateway, stub: StubUpstream, workspace: uuid.UUID
) -> None:
    """What to mend, told also to a caller who may not see the workspace: it says
    nothing of the workspace."""
    seed(in_process)
    spend = f"/v1/workspaces/{workspace}/spend"

    response = await in_process.client.post(spend, headers=bearer("ann"), json={})

    assert_problem(response, 422, "validation-failed")
    assert response.json()["errors"] == [
        {"field": "header.Idempotency-Key", "message": "Field required", "type": "missing"}
    ]
    assert stub.forwarded == []
    keyed = await in_process.client.post(
        spend, headers={**bearer("ann"), "idempotency-key": "k1"}, json={}
    )
    assert keyed.status_code == (200 if workspace == WORKSPACE else 404)


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "idempotency-key"])
async def test_a_credential_or_key_header_sent_twice_is_a_400_problem_and_goes_nowhere(
    in_process: InProcessGateway, stub: StubUpstream, header: str
) -> None:
    seed(in_process)
    ann = bearer("ann")["authorization"]
    twice = [(header, ann if header == "authorization" else "one"), (header, "two")]
    once = [("authorization", ann)] if header != "authorization" else []

    response = await in_process.client.post(
        f"/v1/workspaces/{WORKSPACE}/spend", headers=[*once, *twice], json={}
    )

    assert_problem(response, 400, "malformed-request")
    assert header in response.json()["detail"].lower()
    assert stub.forwarded == []


@pytest.mark.parametrize("settings_overrides", [{"max_body_bytes": 100}])
async def test_a_body_over_the_limit_is_a_413_problem(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    declared = await in_process.client.post(
        "/v1/workspaces", headers=bearer("ann"), content=b"x" * 101
    )

    async def chunks() -> Any:
        for _ in range(3):
            yield b"x" * 40

    streamed = await in_process.client.post(
        "/v1/workspaces", headers=bearer("ann"), content=chunks()
    )
    fits = await in_process.client.post("/v1/workspaces", headers=bearer("ann"), content=b"x" * 100)

    assert_problem(declared, 413, "payload-too-large")
    assert_problem(streamed, 413, "payload-too-large")
    assert fits.status_code == 200
    assert len(stub.forwarded) == 1


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_per_second": 1.0, "rate_limit_burst": 3}]
)
async def test_a_caller_over_their_rate_is_a_429_problem_with_retry_after(
    in_process: InProcessGateway,
) -> None:
    answers = [
        await in_process.client.get("/v1/workspaces", headers=bearer("ann")) for _ in range(4)
    ]
    other = await in_process.client.get("/v1/workspaces", headers=bearer("bo"))

    assert [answer.status_code for answer in answers[:3]] == [200, 200, 200]
    assert_problem(answers[3], 429, "rate-limited")
    assert answers[3].headers["retry-after"] == "1"
    assert other.status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"billing_url": "http://127.0.0.1:9"}])
async def test_an_unreachable_service_is_a_502_problem(in_process: InProcessGateway) -> None:
    seed(in_process)
    response = await in_process.client.get(
        f"/v1/workspaces/{WORKSPACE}/balances", headers=bearer("ann")
    )
    assert_problem(response, 502, "bad-gateway")


@pytest.mark.parametrize("settings_overrides", [{"upstream_timeout_seconds": 0.2}])
async def test_a_slow_service_is_a_504_problem(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed(in_process)
    stub.delay_seconds = 1.0
    response = await in_process.client.get(f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"))
    assert_problem(response, 504, "gateway-timeout")


async def test_a_workspace_being_deleted_can_be_read_but_takes_no_new_work(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed(in_process, status=WorkspaceStatus.DELETING)

    read = await in_process.client.get(f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"))
    changed = await in_process.client.patch(
        f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"), json={"name": "x"}
    )

    assert read.status_code == 200
    assert_problem(changed, 409, "workspace-deleting")
    assert len(stub.forwarded) == 1


async def test_a_deleted_workspace_is_not_found(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    seed(in_process, status=WorkspaceStatus.DELETED)
    response = await in_process.client.get(f"/v1/workspaces/{WORKSPACE}", headers=bearer("ann"))
    assert_problem(response, 404, "not-found")
    assert stub.access_checks == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/invitations"),
        ("POST", f"/v1/invitations/{uuid.uuid4()}/accept"),
        ("POST", f"/v1/invitations/{uuid.uuid4()}/decline"),
    ],
)
async def test_invitations_are_for_a_verified_email_only(
    in_process: InProcessGateway, stub: StubUpstream, method: str, path: str
) -> None:
    unverified = await in_process.client.request(
        method, path, headers=bearer("ann", email_verified=False)
    )
    verified = await in_process.client.request(method, path, headers=bearer("ann"))

    assert_problem(unverified, 403, "email-not-verified")
    assert verified.status_code == 200
    [forwarded] = stub.forwarded
    assert forwarded.principal.email == "ann@example.test"
    assert forwarded.principal.email_verified is True


async def test_liveness_needs_nothing(in_process: InProcessGateway) -> None:
    assert (await in_process.client.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    "settings_overrides", [{"address_refusals_per_second": 1.0, "address_refusals_burst": 3}]
)
async def test_an_address_that_keeps_being_refused_is_a_429_problem_until_it_slows_down(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    signed_in = await in_process.client.get("/v1/workspaces", headers=bearer("ann"))
    refused = [
        await in_process.client.get(path, headers={"authorization": "Bearer nonsense"})
        for path in ("/v1/workspaces", "/v1/nothing", "/v1/workspaces", "/v1/workspaces")
    ]
    known_still = await in_process.client.get("/v1/workspaces", headers=bearer("ann"))
    new_caller = await in_process.client.get("/v1/workspaces", headers=bearer("bo"))

    assert signed_in.status_code == 200
    assert [answer.status_code for answer in refused] == [401, 404, 401, 429]
    assert_problem(refused[3], 429, "rate-limited")
    assert refused[3].headers["retry-after"] == "1"
    assert known_still.status_code == 200
    assert_problem(new_caller, 429, "rate-limited")
    assert len(stub.forwarded) == 2
