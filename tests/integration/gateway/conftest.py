"""The gateway in-process on the test session's PostgreSQL and Kafka: its consumer
builds the projection from identity's events, published here as identity would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import EventPayload, new_envelope
from contracts.events.identity import (
    BillingMode,
    MemberJoined,
    MemberRemoved,
    RemovalReason,
    WorkspaceCreated,
)
from contracts.permissions import Role
from services.gateway.app import Gateway, create_app
from shared.settings import ServiceName, Settings
from shared.testing import eventually, producer_as
from tests.unit.gateway.support import StubUpstream, bearer, gateway_settings, running_stub


@dataclass
class LiveGateway:
    gateway: Gateway
    client: httpx.AsyncClient
    upstream: StubUpstream

    async def status(self, user_id: str, workspace_id: uuid.UUID) -> int:
        response = await self.client.get(f"/v1/workspaces/{workspace_id}", headers=bearer(user_id))
        return response.status_code

    async def until_status(
        self, user_id: str, workspace_id: uuid.UUID, status: int, timeout: float = 30
    ) -> None:
        async def probe() -> bool | None:
            return True if await self.status(user_id, workspace_id) == status else None

        await eventually(probe, timeout=timeout, what=f"{status} for {user_id}")


class Publisher:
    """Publishes a service's events to Kafka the way its outbox relay does."""

    service = ServiceName.IDENTITY

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, payload: EventPayload, *, root_id: uuid.UUID) -> None:
        workspace_id = getattr(payload, "workspace_id", None) or getattr(payload, "id", None)
        envelope = new_envelope(
            payload,
            producer=self.service.value,
            root_id=root_id,
            workspace_id=workspace_id,
            actor="system",
            correlation_id=None,
        )
        await self.producer.send_and_wait(
            payload.topic.value,
            envelope.model_dump_json().encode(),
            key=str(root_id).encode(),
            headers=[("content-type", b"application/json")],
        )


class Identity(Publisher):
    """identity's events."""

    async def workspace_created(
        self, workspace_id: uuid.UUID, *, parent_id: uuid.UUID | None, root_id: uuid.UUID
    ) -> None:
        await self.publish(
            WorkspaceCreated(
                id=workspace_id,
                parent_id=parent_id,
                root_id=root_id,
                billing_root_id=root_id,
                depth=0 if parent_id is None else 1,
                name="Acme",
                billing_mode=BillingMode.OWN if parent_id is None else BillingMode.PARENT,
                api_access=True,
                strict_quota=True,
            ),
            root_id=root_id,
        )

    async def member_joined(
        self, workspace_id: uuid.UUID, user_id: str, role: Role, *, root_id: uuid.UUID
    ) -> None:
        await self.publish(
            MemberJoined(
                workspace_id=workspace_id,
                root_id=root_id,
                billing_root_id=root_id,
                user_id=user_id,
                email=f"{user_id}@example.test",
                role=role,
            ),
            root_id=root_id,
        )

    async def member_removed(
        self, workspace_id: uuid.UUID, user_id: str, role: Role, *, root_id: uuid.UUID
    ) -> None:
        await self.publish(
            MemberRemoved(
                workspace_id=workspace_id,
                root_id=root_id,
                user_id=user_id,
                role=role,
                reason=RemovalReason.REMOVED,
            ),
            root_id=root_id,
        )


@pytest.fixture(scope="module")
async def identity(settings: Settings) -> AsyncIterator[Identity]:
    async with producer_as(ServiceName.IDENTITY, settings) as producer:
        yield Identity(producer)


@pytest.fixture(scope="module")
async def live(settings: Settings) -> AsyncIterator[LiveGateway]:
    async with running_stub() as upstream:
        app = create_app(
            gateway_settings(
                upstream.url,
                database_url=settings.database_url,
                kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
                gateway_kafka_password=settings.gateway_kafka_password,
                shared_rate_limits=True,
            )
        )
        gateway: Gateway = app.state.gateway
        await gateway.start()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield LiveGateway(gateway=gateway, client=client, upstream=upstream)
        finally:
            await gateway.stop()
