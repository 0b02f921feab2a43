"""identity in-process on the real database, and a small vocabulary for its tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import RawEnvelope
from contracts.events.billing import LimitsChanged
from services.identity import models
from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.testing import SignedAs, as_delivered


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str

    @property
    def auth(self) -> SignedAs:
        return SignedAs(self.user_id, email=self.email)


def person(name: str) -> Person:
    unique = uuid.uuid4().hex[:10]
    return Person(user_id=f"{name}-{unique}", email=f"{name}.{unique}@example.com")


def identity_settings(settings: Settings, **overrides: Any) -> IdentitySettings:
    return IdentitySettings(**{**settings.model_dump(), "outbox_relay_enabled": False, **overrides})


@pytest.fixture
async def identity_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(identity_settings(settings))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=identity_app), base_url="http://identity"
    ) as http:
        yield http


@pytest.fixture
def identity(identity_app: FastAPI) -> ServiceRuntime:
    """identity's runtime: its consumers, and the units of work its use cases run in."""
    runtime: ServiceRuntime = identity_app.state.runtime
    return runtime


async def create_root(client: httpx.AsyncClient, founder: Person, name: str = "Acme") -> str:
    response = await client.post("/v1/workspaces", json={"name": name}, auth=founder.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create_sub(
    client: httpx.AsyncClient,
    admin: Person,
    parent_id: str,
    *,
    name: str = "Client",
    billing_mode: str = "parent",
    members: list[dict[str, str]] | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/workspaces/{parent_id}/sub-workspaces",
        json={
            "name": name,
            "billing_mode": billing_mode,
            "api_access": False,
            "members": members or [],
        },
        auth=admin.auth,
    )


async def invite(
    client: httpx.AsyncClient, admin: Person, workspace_id: str, who: Person, role: str = "creator"
) -> httpx.Response:
    return await client.post(
        f"/v1/workspaces/{workspace_id}/invitations",
        json={"email": who.email, "role": role},
        auth=admin.auth,
    )


async def join(
    client: httpx.AsyncClient, admin: Person, workspace_id: str, who: Person, role: str = "creator"
) -> None:
    invited = await invite(client, admin, workspace_id, who, role)
    assert invited.status_code == 201, invited.text
    accepted = await client.post(f"/v1/invitations/{invited.json()['id']}/accept", auth=who.auth)
    assert accepted.status_code == 200, accepted.text


async def seats(client: httpx.AsyncClient, who: Person, workspace_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/workspaces/{workspace_id}/seats", auth=who.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def set_seat_limit(
    identity: ServiceRuntime, workspace_id: str, limit: int, *, root_id: str | None = None
) -> None:
    """Deliver billing's word on a billing root's seats, as its consumer would; `root_id`:
    the account's root, when the billing root is a sub-workspace."""
    workspace = uuid.UUID(workspace_id)
    root = workspace if root_id is None else uuid.UUID(root_id)
    await identity.consumer.consume(
        as_delivered(
            LimitsChanged(
                workspace_id=workspace,
                root_id=root,
                billing_root_id=workspace,
                seats_limit=limit,
                seats_cap=None,
                avatar_slots_limit=3,
            ),
            producer="billing",
            root_id=root,
            workspace_id=workspace,
        )
    )


async def events_about(admin_engine: AsyncEngine, root_id: str) -> list[RawEnvelope]:
    """Every event identity staged for one account, in commit order."""
    async with admin_engine.connect() as connection:
        rows = (
            await connection.execute(
                select(models.outbox.c.envelope)
                .where(models.outbox.c.message_key == root_id)
                .order_by(models.outbox.c.id)
            )
        ).scalars()
        return [RawEnvelope.model_validate_json(row) for row in rows]


async def event_types(admin_engine: AsyncEngine, root_id: str) -> list[str]:
    return [envelope.type for envelope in await events_about(admin_engine, root_id)]


FROM_ROWS = text(
    """
    WITH live AS (
      SELECT id FROM identity.workspaces
      WHERE billing_root_id = :pool AND status != 'deleted'
    ), held AS (
      SELECT email, expires_at FROM identity.invitations
      WHERE workspace_id IN (SELECT id FROM live) AND status = 'pending'
        AND email NOT IN (
          SELECT email FROM identity.memberships
          WHERE workspace_id IN (SELECT id FROM live) AND email IS NOT NULL
        )
    )
    SELECT
      (SELECT count(DISTINCT user_id) FROM identity.memberships
       WHERE workspace_id IN (SELECT id FROM live)),
      (SELECT count(DISTINCT email) FROM held),
      (SELECT count(DISTINCT email) FROM held WHERE expires_at > now()),
      seated, held
    FROM identity.seat_pools WHERE billing_root_id = :pool
    """
)
"""A seat pool counted from its rows (people seated, emails held by pending invitations),
next to the count the pool keeps."""


@dataclass(frozen=True)
class Counts:
    used: int
    held: int
    """Emails pending invitations hold, expired or not."""
    pending: int
    """The same, without the expired ones: what `GET …/seats` shows."""
    kept_used: int
    kept_held: int


async def counts(admin_engine: AsyncEngine, pool_id: str) -> Counts:
    async with admin_engine.connect() as connection:
        row = (await connection.execute(FROM_ROWS, {"pool": uuid.UUID(pool_id)})).one()
    return Counts(*(int(value) for value in row))


async def assert_kept_count_is_the_recount(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, admin: Person, workspace_id: str
) -> Counts:
    shown = await seats(client, admin, workspace_id)
    found = await counts(admin_engine, shown["pool_root_id"])
    assert (found.kept_used, found.kept_held) == (found.used, found.held)
    assert (shown["used"], shown["pending"]) == (found.used, found.pending)
    return found
