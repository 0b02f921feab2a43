"""apikeys as a real process on the test session's PostgreSQL and Kafka: called over
HTTP with principals signed as the gateway signs them, fed identity's, the gateway's
and billing's events through Kafka (each published as its own service's principal),
and its own events read back off `atrium.apikeys.key`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import Envelope, EventPayload, RawEnvelope, new_envelope
from contracts.events.billing import LedgerLine, TransactionPosted
from contracts.events.gateway import ApiRequestsRecorded, RecordedRequest
from contracts.events.identity import (
    BillingMode,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
)
from contracts.permissions import Role
from contracts.topics import Topic
from infra.processes import free_port
from infra.sandbox import Sandbox
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess, SignedAs, eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def apikeys_process(atrium: Sandbox, log_dir: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        ServiceName.APIKEYS, port=free_port(), environment=atrium.environment, log_dir=log_dir
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Publisher:
    """Publishes one service's events the way its outbox relay does, as its principal."""

    def __init__(self, producer: AIOKafkaProducer, service: ServiceName) -> None:
        self.producer = producer
        self.service = service

    def envelope(self, payload: EventPayload, *, root_id: uuid.UUID) -> Envelope[EventPayload]:
        workspace_id = getattr(payload, "workspace_id", None) or getattr(payload, "id", None)
        return new_envelope(
            payload,
            producer=self.service.value,
            root_id=root_id,
            workspace_id=workspace_id,
            actor="system",
            correlation_id=None,
        )

    async def send(self, envelope: Envelope[EventPayload]) -> None:
        """Also the way to deliver one event twice: send the same envelope again."""
        await self.producer.send_and_wait(
            envelope.data.topic.value,
            envelope.model_dump_json().encode(),
            key=str(envelope.root_id).encode(),
            headers=[("content-type", b"application/json")],
        )

    async def publish(self, payload: EventPayload, *, root_id: uuid.UUID) -> Envelope[Any]:
        envelope = self.envelope(payload, root_id=root_id)
        await self.send(envelope)
        return envelope


@contextlib.asynccontextmanager
async def publisher(settings: Settings, service: ServiceName) -> AsyncIterator[Publisher]:
    producer = AIOKafkaProducer(
        **settings.kafka_for(service).client_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield Publisher(producer, service)
    finally:
        await producer.stop()


class KeyEvents:
    """Everything on `atrium.apikeys.key` from its beginning, read as the administrator."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.seen: list[RawEnvelope] = []

    async def read(self) -> None:
        async for record in self.consumer:
            self.seen.append(RawEnvelope.model_validate_json(record.value))

    def of(self, workspace_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        return [
            (envelope.type, envelope.data)
            for envelope in self.seen
            if envelope.workspace_id == workspace_id
        ]

    async def until(
        self, workspace_id: uuid.UUID, count: int, timeout: float = 15
    ) -> list[tuple[str, dict[str, Any]]]:
        async def probe() -> list[tuple[str, dict[str, Any]]] | None:
            found = self.of(workspace_id)
            return found if len(found) >= count else None

        return await eventually(probe, timeout=timeout, what=f"{count} key events")


@pytest.fixture(scope="module")
async def key_events(settings: Settings) -> AsyncIterator[KeyEvents]:
    consumer = AIOKafkaConsumer(**settings.kafka_admin().client_options(), enable_auto_commit=False)
    await consumer.start()
    consumer.assign(
        [
            TopicPartition(Topic.APIKEYS_KEY.value, partition)
            for partition in range(settings.kafka_topic_partitions)
        ]
    )
    await consumer.seek_to_beginning()
    events = KeyEvents(consumer)
    reading = asyncio.create_task(events.read())
    try:
        yield events
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await consumer.stop()


@dataclass
class Workspace:
    id: uuid.UUID
    root_id: uuid.UUID
    parent_id: uuid.UUID | None = None


@dataclass
class ApiKeys:
    """The apikeys process, and the other services' events as a test sends them."""

    process: ServiceProcess
    identity: Publisher
    gateway: Publisher
    billing: Publisher
    events: KeyEvents
    admin_engine: AsyncEngine
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.process.url, timeout=15)

    # identity

    async def workspace(
        self, *, parent: Workspace | None = None, api_access: bool = True, wait: bool = True
    ) -> Workspace:
        workspace_id = uuid.uuid4()
        root_id = workspace_id if parent is None else parent.root_id
        workspace = Workspace(workspace_id, root_id, None if parent is None else parent.id)
        await self.identity.publish(
            self.announcement(workspace, api_access=api_access), root_id=root_id
        )
        if wait:
            await self.until_known(workspace)
        return workspace

    @staticmethod
    def announcement(workspace: Workspace, *, api_access: bool = True) -> WorkspaceCreated:
        root = workspace.parent_id is None
        return WorkspaceCreated(
            id=workspace.id,
            parent_id=workspace.parent_id,
            root_id=workspace.root_id,
            billing_root_id=workspace.root_id,
            depth=0 if root else 1,
            name="Acme",
            billing_mode=BillingMode.OWN if root else BillingMode.PARENT,
            api_access=api_access,
            strict_quota=True,
        )

    async def until_known(self, workspace: Workspace) -> None:
        async def probe() -> bool | None:
            response = await self.client.get(
                f"/v1/workspaces/{workspace.id}/api-keys",
                auth=self.as_(workspace, ancestor_super_admin=True),
            )
            return True if response.status_code == 200 else None

        await eventually(probe, timeout=30, what=f"workspace {workspace.id} to arrive")

    async def set_api_access(self, workspace: Workspace, api_access: bool) -> None:
        await self.identity.publish(
            WorkspaceSettingsChanged(
                id=workspace.id,
                parent_id=workspace.parent_id,
                root_id=workspace.root_id,
                billing_root_id=workspace.root_id,
                previous_billing_root_id=workspace.root_id,
                billing_mode=BillingMode.OWN if workspace.parent_id is None else BillingMode.PARENT,
                api_access=api_access,
                strict_quota=True,
            ),
            root_id=workspace.root_id,
        )

    async def delete(self, workspace: Workspace) -> None:
        await self.identity.publish(
            WorkspaceDeletionStarted(
                id=workspace.id, parent_id=workspace.parent_id, root_id=workspace.root_id
            ),
            root_id=workspace.root_id,
        )
        await self.identity.publish(
            WorkspaceDeleted(
                id=workspace.id,
                parent_id=workspace.parent_id,
                root_id=workspace.root_id,
                billing_root_id=workspace.root_id,
                billing_mode=BillingMode.OWN if workspace.parent_id is None else BillingMode.PARENT,
            ),
            root_id=workspace.root_id,
        )

    # the gateway and billing

    def requests_recorded(
        self, workspace: Workspace, *requests: tuple[uuid.UUID, int, datetime]
    ) -> Envelope[Any]:
        return self.gateway.envelope(
            ApiRequestsRecorded(
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                requests=tuple(
                    RecordedRequest(
                        key_id=key_id,
                        route="POST /v1/workspaces/{workspace_id}/spend",
                        status=status,
                        latency_ms=3.5,
                        at=at,
                    )
                    for key_id, status, at in requests
                ),
            ),
            root_id=workspace.root_id,
        )

    def spent_with_key(
        self, workspace: Workspace, key_id: uuid.UUID, credits_spent: int
    ) -> Envelope[Any]:
        return self.billing.envelope(
            TransactionPosted(
                transaction_id=uuid.uuid4(),
                workspace_id=workspace.id,
                root_id=workspace.root_id,
                kind="spend",
                operation="api_call",
                api_key_id=key_id,
                lines=(
                    LedgerLine(
                        workspace_id=workspace.id, pool="api_credits", amount=-credits_spent
                    ),
                    LedgerLine(workspace_id=None, pool="api_credits", amount=credits_spent),
                ),
            ),
            root_id=workspace.root_id,
        )

    # HTTP, as the gateway signs it

    def as_(
        self,
        workspace: Workspace,
        *,
        role: Role = Role.DEVELOPER,
        ancestor_super_admin: bool = False,
        api_key_id: uuid.UUID | None = None,
        user_id: str = "ada",
    ) -> SignedAs:
        return SignedAs(
            user_id,
            role=Role.SUPER_ADMIN if ancestor_super_admin else role,
            ancestor_super_admin=ancestor_super_admin,
            api_key_id=api_key_id,
            workspace_id=workspace.id,
        )

    async def create(
        self, workspace: Workspace, body: dict[str, Any] | None = None, **auth: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/workspaces/{workspace.id}/api-keys",
            json={"name": "CI"} if body is None else body,
            auth=self.as_(workspace, **auth),
        )

    async def created(self, workspace: Workspace, **body: Any) -> dict[str, Any]:
        response = await self.create(workspace, {"name": "CI", **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def keys(self, workspace: Workspace, **auth: Any) -> dict[str, dict[str, Any]]:
        """The workspace's keys by id, every page."""
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            response = await self.client.get(
                f"/v1/workspaces/{workspace.id}/api-keys",
                params={"limit": 200} | ({} if cursor is None else {"cursor": cursor}),
                auth=self.as_(workspace, **auth),
            )
            assert response.status_code == 200, response.text
            page = response.json()
            found |= {item["id"]: item for item in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    async def status_of(self, workspace: Workspace, key_id: str) -> str:
        keys = await self.keys(workspace, ancestor_super_admin=True)
        status: str = keys[key_id]["status"]
        return status

    async def rotate(
        self, workspace: Workspace, key_id: str, grace: int | str | None = None, **auth: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/workspaces/{workspace.id}/api-keys/{key_id}/rotate",
            params={} if grace is None else {"grace_seconds": grace},
            auth=self.as_(workspace, **auth),
        )

    async def revoke(self, workspace: Workspace, key_id: str, **auth: Any) -> httpx.Response:
        return await self.client.delete(
            f"/v1/workspaces/{workspace.id}/api-keys/{key_id}", auth=self.as_(workspace, **auth)
        )

    async def usage(
        self, workspace: Workspace, key_id: str | None = None, **params: str
    ) -> httpx.Response:
        path = f"/v1/workspaces/{workspace.id}/" + (
            "api-usage" if key_id is None else f"api-keys/{key_id}/usage"
        )
        return await self.client.get(
            path,
            params=params,
            auth=self.as_(workspace, role=Role.SUPER_ADMIN),
        )

    async def look_up(self, key_hash: str) -> httpx.Response:
        return await self.client.get(f"/internal/v1/api-keys/{key_hash}", auth=SignedAs(None))


@pytest.fixture(scope="module")
async def apikeys(
    apikeys_process: ServiceProcess,
    settings: Settings,
    key_events: KeyEvents,
    admin_engine: AsyncEngine,
) -> AsyncIterator[ApiKeys]:
    async with (
        publisher(settings, ServiceName.IDENTITY) as identity,
        publisher(settings, ServiceName.GATEWAY) as gateway,
        publisher(settings, ServiceName.BILLING) as billing,
    ):
        driver = ApiKeys(
            process=apikeys_process,
            identity=identity,
            gateway=gateway,
            billing=billing,
            events=key_events,
            admin_engine=admin_engine,
        )
        try:
            yield driver
        finally:
            await driver.client.aclose()


def today() -> datetime:
    return datetime.now(UTC)
