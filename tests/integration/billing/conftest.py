"""billing on the test session's PostgreSQL: the FastAPI app driven in-process, events
handed to its consumer directly, and a look behind its back at the ledger and at what
each API key's budget spent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import EventPayload, RawEnvelope
from contracts.events.apikeys import ApiKeyCreated
from contracts.events.identity import (
    BillingMode,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceSettingsChanged,
)
from contracts.permissions import Role
from services.billing.app import create_app
from services.billing.settings import BillingSettings
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.testing import SignedAs, as_delivered


def billing_settings(settings: Settings, **overrides: Any) -> BillingSettings:
    return BillingSettings(
        **settings.model_copy(update={"outbox_relay_enabled": False, **overrides}).model_dump()
    )


@pytest.fixture
async def billing(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(billing_settings(settings))
    yield app
    await app.state.runtime.stop()


@dataclass
class Workspace:
    id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None
    billing_root_id: uuid.UUID
    billing_mode: BillingMode


@dataclass
class BillingDriver:
    """The billing app and the ways a test reaches it."""

    app: FastAPI
    admin_engine: AsyncEngine
    secret: str
    created: list[Workspace] = field(default_factory=list)

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://billing"
        )

    def caller(
        self,
        workspace: Workspace | uuid.UUID,
        *,
        role: Role | None = Role.SUPER_ADMIN,
        user_id: str | None = "ada",
        api_key_id: uuid.UUID | None = None,
        ancestor_super_admin: bool = False,
    ) -> SignedAs:
        """Calls billing as the gateway would, vouching for `workspace`."""
        return SignedAs(
            user_id,
            role=role,
            api_key_id=api_key_id,
            ancestor_super_admin=ancestor_super_admin,
            workspace_id=workspace.id if isinstance(workspace, Workspace) else workspace,
            secret=self.secret,
        )

    async def deliver(self, payload: EventPayload, *, root_id: uuid.UUID) -> RawEnvelope:
        envelope = envelope_of(payload, root_id=root_id)
        await self.runtime.consumer.consume(envelope)
        return envelope

    async def root(self, **purchases: int) -> Workspace:
        root_id = uuid.uuid4()
        workspace = Workspace(root_id, root_id, None, root_id, BillingMode.OWN)
        await self.announce(workspace)
        for pool, quantity in purchases.items():
            await self.purchase(workspace, pool, quantity)
        return workspace

    async def sub(
        self,
        parent: Workspace,
        *,
        billing_mode: BillingMode = BillingMode.PARENT,
        strict_quota: bool = True,
        api_access: bool = True,
    ) -> Workspace:
        workspace_id = uuid.uuid4()
        workspace = Workspace(
            workspace_id,
            parent.root_id,
            parent.id,
            workspace_id if billing_mode is BillingMode.OWN else parent.billing_root_id,
            billing_mode,
        )
        await self.announce(workspace, strict_quota=strict_quota, api_access=api_access)
        return workspace

    async def announce(
        self, workspace: Workspace, *, strict_quota: bool = True, api_access: bool = True
    ) -> None:
        await self.deliver(
            WorkspaceCreated(
                id=workspace.id,
                parent_id=workspace.parent_id,
                root_id=workspace.root_id,
                billing_root_id=workspace.billing_root_id,
                depth=0 if workspace.parent_id is None else 1,
                name="Acme",
                billing_mode=workspace.billing_mode,
                api_access=api_access,
                strict_quota=strict_quota,
            ),
            root_id=workspace.root_id,
        )
        self.created.append(workspace)

    async def change_settings(
        self,
        workspace: Workspace,
        *,
        billing_mode: BillingMode,
        strict_quota: bool,
        api_access: bool = True,
    ) -> None:
        previous = workspace.billing_root_id
        assert workspace.parent_id is not None
        parent_billing_root = next(
            w.billing_root_id for w in self.created if w.id == workspace.parent_id
        )
        workspace.billing_mode = billing_mode
        workspace.billing_root_id = (
            workspace.id if billing_mode is BillingMode.OWN else parent_billing_root
        )
        await self.deliver(
            WorkspaceSettingsChanged(
                id=workspace.id,
                parent_id=workspace.parent_id,
                root_id=workspace.root_id,
                billing_root_id=workspace.billing_root_id,
                previous_billing_root_id=previous,
                billing_mode=billing_mode,
                api_access=api_access,
                strict_quota=strict_quota,
            ),
            root_id=workspace.root_id,
        )

    async def create_key(
        self,
        workspace: Workspace,
        *,
        monthly_credit_limit: int | None = None,
        expires_at: datetime | None = None,
        suspended: bool = False,
        rotated_from: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """apikeys announces a new key of `workspace`; its id."""
        created = key_created(
            workspace,
            monthly_credit_limit=monthly_credit_limit,
            expires_at=expires_at,
            suspended=suspended,
            rotated_from=rotated_from,
        )
        await self.deliver(created, root_id=workspace.root_id)
        return created.key_id

    async def key_spent(self, key_id: uuid.UUID) -> int:
        """What the key's budget spent this UTC month, as billing keeps it."""
        async with self.admin_engine.connect() as connection:
            spent = await connection.scalar(
                text(
                    "SELECT coalesce(sum(s.spent), 0) FROM billing.api_keys k"
                    " JOIN billing.api_key_spending s ON s.budget_id = k.budget_id"
                    " WHERE k.key_id = :k"
                    " AND s.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date"
                ),
                {"k": key_id},
            )
        return int(spent or 0)

    def deleted(self, workspace: Workspace) -> WorkspaceDeleted:
        return WorkspaceDeleted(
            id=workspace.id,
            parent_id=workspace.parent_id,
            root_id=workspace.root_id,
            billing_root_id=workspace.billing_root_id,
            billing_mode=workspace.billing_mode,
        )

    async def delete(self, workspace: Workspace) -> None:
        await self.deliver(self.deleted(workspace), root_id=workspace.root_id)

    async def purchase(self, workspace: Workspace, pool: str, quantity: int) -> httpx.Response:
        async with self.client() as client:
            response = await client.post(
                f"/v1/workspaces/{workspace.id}/purchases",
                json={"pool": pool, "quantity": quantity},
                auth=self.caller(workspace),
            )
        assert response.status_code == 201, response.text
        return response

    async def allocate(self, workspace: Workspace, **targets: int) -> httpx.Response:
        async with self.client() as client:
            return await client.put(
                f"/v1/workspaces/{workspace.id}/allocations",
                json=targets,
                auth=self.caller(workspace, ancestor_super_admin=True),
            )

    async def spend(
        self,
        workspace: Workspace,
        operation: str = "image_creation",
        quantity: int = 1,
        *,
        key: str | None = None,
        client: httpx.AsyncClient | None = None,
        **caller: Any,
    ) -> httpx.Response:
        body = {"operation": operation, "quantity": quantity}
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        auth = self.caller(workspace, **({"role": Role.CREATOR} | caller))
        if client is not None:
            return await client.post(
                f"/v1/workspaces/{workspace.id}/spend", json=body, headers=headers, auth=auth
            )
        async with self.client() as own:
            return await own.post(
                f"/v1/workspaces/{workspace.id}/spend", json=body, headers=headers, auth=auth
            )

    async def balances(self, workspace: Workspace) -> dict[str, Any]:
        async with self.client() as client:
            response = await client.get(
                f"/v1/workspaces/{workspace.id}/balances",
                auth=self.caller(workspace, role=Role.VIEWER),
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def balance(self, workspace: Workspace, pool: str = "generative_credits") -> int:
        value: int = (await self.balances(workspace))[pool]["balance"]
        return value

    async def ledger_sum(self, workspace: Workspace, pool: str = "generative_credits") -> int:
        async with self.admin_engine.connect() as connection:
            total = await connection.scalar(
                text(
                    "SELECT coalesce(sum(amount), 0) FROM billing.ledger_lines"
                    " WHERE workspace_id = :w AND pool = :p"
                ),
                {"w": workspace.id, "p": pool},
            )
        return int(total or 0)

    async def assert_ledger_consistent(self, workspaces: list[Workspace]) -> None:
        """Every transaction of these workspaces balances per pool, and each of their
        balances is the sum of its ledger lines and not negative."""
        ids = [workspace.id for workspace in workspaces]
        async with self.admin_engine.connect() as connection:
            unbalanced = (
                await connection.execute(
                    text(
                        "SELECT l.transaction_id, l.pool FROM billing.ledger_lines AS l"
                        " JOIN billing.transactions AS t ON t.id = l.transaction_id"
                        " WHERE t.workspace_id = ANY(:ids)"
                        " GROUP BY l.transaction_id, l.pool HAVING sum(l.amount) <> 0"
                    ),
                    {"ids": ids},
                )
            ).all()
            drift = (
                await connection.execute(
                    text(
                        "SELECT b.workspace_id, b.pool, b.balance, coalesce(sum(l.amount), 0)"
                        " FROM billing.balances AS b LEFT JOIN billing.ledger_lines AS l"
                        " ON l.workspace_id = b.workspace_id AND l.pool = b.pool"
                        " WHERE b.workspace_id = ANY(:ids)"
                        " GROUP BY b.workspace_id, b.pool, b.balance"
                        " HAVING b.balance <> coalesce(sum(l.amount), 0) OR b.balance < 0"
                    ),
                    {"ids": ids},
                )
            ).all()
        assert unbalanced == []
        assert drift == []

    async def stored_balance(self, workspace: Workspace, pool: str) -> int:
        async with self.admin_engine.connect() as connection:
            value = await connection.scalar(
                text("SELECT balance FROM billing.balances WHERE workspace_id = :w AND pool = :p"),
                {"w": workspace.id, "p": pool},
            )
        return int(value)

    async def staged_events(self, event_type: str, workspace: Workspace) -> list[dict[str, Any]]:
        async with self.admin_engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT envelope::jsonb -> 'data' FROM billing.outbox"
                    " WHERE event_type = :t AND (envelope::jsonb ->> 'workspace_id') = :w"
                    " ORDER BY id"
                ),
                {"t": event_type, "w": str(workspace.id)},
            )
        return [row[0] for row in rows]


def envelope_of(payload: EventPayload, *, root_id: uuid.UUID) -> RawEnvelope:
    """The event as its producer (the service its topic is named after) sends it."""
    return as_delivered(
        payload,
        root_id=root_id,
        workspace_id=getattr(payload, "id", None) or getattr(payload, "workspace_id", None),
        producer=payload.topic.value.split(".")[1],
        actor="user:founder",
    )


def key_created(
    workspace: Workspace,
    *,
    monthly_credit_limit: int | None = None,
    expires_at: datetime | None = None,
    suspended: bool = False,
    rotated_from: uuid.UUID | None = None,
) -> ApiKeyCreated:
    return ApiKeyCreated(
        key_id=uuid.uuid4(),
        workspace_id=workspace.id,
        root_id=workspace.root_id,
        hash=uuid.uuid4().hex * 2,
        prefix="atr_Ab12",
        last4="Zz90",
        name="CI pipeline",
        expires_at=expires_at,
        rate_limit=None,
        monthly_credit_limit=monthly_credit_limit,
        suspended=suspended,
        rotated_from=rotated_from,
    )


@pytest.fixture
def driver(billing: FastAPI, admin_engine: AsyncEngine, settings: Settings) -> BillingDriver:
    return BillingDriver(app=billing, admin_engine=admin_engine, secret=settings.internal_secret)
