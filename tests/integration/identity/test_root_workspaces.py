"""Creating and reading root workspaces through identity's HTTP API, on the real
database and Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import RawEnvelope
from services.identity import models
from services.identity.app import create_app
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.settings import Settings
from shared.testing import SignedAs
from tests.integration.identity.conftest import identity_settings

pytestmark = pytest.mark.integration


def as_user(user_id: str, email: str | None = None) -> SignedAs:
    return SignedAs(user_id, email=email)


@pytest.fixture
async def identity(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(identity_settings(settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity"
        ) as client,
    ):
        yield client


async def count_workspaces(admin_engine: AsyncEngine) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(models.workspaces))
    return int(count or 0)


async def test_the_creator_of_a_root_workspace_is_its_super_admin(
    identity: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    founder = f"user-{uuid.uuid4()}"
    response = await identity.post(
        "/v1/workspaces", json={"name": "  Acme Studio  "}, auth=as_user(founder, "f@acme.test")
    )

    assert response.status_code == 201
    workspace = response.json()
    assert workspace["name"] == "Acme Studio"
    assert workspace["parent_id"] is None
    assert workspace["root_id"] == workspace["id"]
    assert workspace["depth"] == 0
    assert workspace["billing_mode"] == "own"
    assert workspace["status"] == "active"
    async with admin_engine.connect() as connection:
        role = await connection.scalar(
            select(models.memberships.c.role).where(
                models.memberships.c.workspace_id == uuid.UUID(workspace["id"]),
                models.memberships.c.user_id == founder,
            )
        )
    assert role == "super_admin"


async def test_a_new_workspace_and_its_event_are_committed_together(
    identity: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    response = await identity.post(
        "/v1/workspaces",
        json={"name": "Evented", "image_url": "https://cdn.example.com/logo.png"},
        auth=as_user(f"user-{uuid.uuid4()}"),
    )
    workspace_id = response.json()["id"]

    async with admin_engine.connect() as connection:
        rows = (
            await connection.execute(
                select(models.outbox.c.topic, models.outbox.c.message_key, models.outbox.c.envelope)
                .where(models.outbox.c.message_key == workspace_id)
                .order_by(models.outbox.c.id)
            )
        ).all()
    assert [RawEnvelope.model_validate_json(raw).type for _, _, raw in rows] == [
        "workspace.created",
        "member.joined",
        "seats.usage_changed",
    ]
    topic, key, raw = rows[0]
    envelope = RawEnvelope.model_validate_json(raw)
    assert topic == "atrium.identity.workspace"
    assert key == workspace_id
    assert envelope.type == "workspace.created"
    assert envelope.data == {
        "id": workspace_id,
        "parent_id": None,
        "root_id": workspace_id,
        "billing_root_id": workspace_id,
        "depth": 0,
        "name": "Evented",
        "image_url": "https://cdn.example.com/logo.png",
        "billing_mode": "own",
        "api_access": True,
        "strict_quota": True,
    }
    assert envelope.correlation_id == response.headers["x-request-id"]


async def test_a_workspace_is_visible_to_its_members_only(identity: httpx.AsyncClient) -> None:
    founder = f"user-{uuid.uuid4()}"
    created = await identity.post("/v1/workspaces", json={"name": "Private"}, auth=as_user(founder))
    workspace_id = created.json()["id"]

    mine = await identity.get(f"/v1/workspaces/{workspace_id}", auth=as_user(founder))
    stranger = await identity.get(
        f"/v1/workspaces/{workspace_id}", auth=as_user(f"user-{uuid.uuid4()}")
    )
    missing = await identity.get(f"/v1/workspaces/{uuid.uuid4()}", auth=as_user(founder))

    assert mine.status_code == 200
    assert mine.json() == created.json()
    assert stranger.status_code == 404
    assert missing.status_code == 404
    assert stranger.json()["type"] == missing.json()["type"] == "not-found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "tab\tinside"}, "name"),
        ({"name": "bell\u0007"}, "name"),
        ({"name": "zero\u200bwidth"}, "name"),
        ({"name": 42}, "name"),
        ({}, "name"),
        ({"name": "Acme", "image_url": "http://cdn.example.com/a.png"}, "image_url"),
        ({"name": "Acme", "image_url": "not a url"}, "image_url"),
        ({"name": "Acme", "plan": "gold"}, "plan"),
    ],
)
async def test_an_invalid_workspace_is_refused_with_field_errors_and_nothing_written(
    identity: httpx.AsyncClient, admin_engine: AsyncEngine, body: dict[str, object], field: str
) -> None:
    before = await count_workspaces(admin_engine)

    response = await identity.post("/v1/workspaces", json=body, auth=as_user("validator"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "validation-failed"
    assert problem["status"] == 422
    assert field in [error["field"] for error in problem["errors"]]
    assert await count_workspaces(admin_engine) == before


async def test_a_name_of_exactly_one_hundred_characters_is_accepted(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.post(
        "/v1/workspaces", json={"name": "é" * 100}, auth=as_user("long-namer")
    )
    assert response.status_code == 201
    assert response.json()["name"] == "é" * 100


async def test_a_body_that_is_not_json_is_a_400_problem(identity: httpx.AsyncClient) -> None:
    response = await identity.post(
        "/v1/workspaces",
        content=b"{not json",
        auth=as_user("sloppy"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "malformed-request"


async def test_a_caller_without_the_gateways_signature_is_refused(
    identity: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    before = await count_workspaces(admin_engine)
    unsigned = await identity.post("/v1/workspaces", json={"name": "Anonymous"})
    forged = await identity.post(
        "/v1/workspaces",
        json={"name": "Forged"},
        auth=SignedAs("mallory", secret="not-the-internal-secret"),
    )
    assert unsigned.status_code == forged.status_code == 401
    assert unsigned.json()["type"] == forged.json()["type"] == "unauthenticated"
    assert await count_workspaces(admin_engine) == before


async def test_a_signature_for_another_request_is_refused(
    identity: httpx.AsyncClient, settings: Settings
) -> None:
    founder = f"user-{uuid.uuid4()}"
    created = await identity.post("/v1/workspaces", json={"name": "Mine"}, auth=as_user(founder))
    workspace_id = created.json()["id"]
    signed_for_listing = sign_principal(
        Principal(user_id=founder),
        method="POST",
        target="/v1/workspaces",
        body=b"",
        secret=settings.internal_secret,
    )
    replayed = await identity.get(
        f"/v1/workspaces/{workspace_id}", headers={PRINCIPAL_HEADER: signed_for_listing}
    )
    assert replayed.status_code == 401


async def test_a_workspace_the_gateway_did_not_vouch_for_is_not_found(
    identity: httpx.AsyncClient, settings: Settings
) -> None:
    founder = f"user-{uuid.uuid4()}"
    created = await identity.post("/v1/workspaces", json={"name": "Mine"}, auth=as_user(founder))
    workspace_id = created.json()["id"]
    path = f"/v1/workspaces/{workspace_id}"
    vouched_elsewhere = sign_principal(
        Principal(user_id=founder, workspace_id=uuid.uuid4()),
        method="GET",
        target=path,
        body=b"",
        secret=settings.internal_secret,
    )
    response = await identity.get(path, headers={PRINCIPAL_HEADER: vouched_elsewhere})
    assert response.status_code == 404


async def test_a_malformed_workspace_id_is_a_validation_problem(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.get("/v1/workspaces/not-a-uuid", auth=as_user("someone"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.workspace_id"


async def test_every_response_carries_the_request_id(identity: httpx.AsyncClient) -> None:
    echoed = await identity.get("/healthz", headers={"x-request-id": "trace-123"})
    generated = await identity.get("/healthz")
    assert echoed.headers["x-request-id"] == "trace-123"
    assert len(generated.headers["x-request-id"]) == 32
