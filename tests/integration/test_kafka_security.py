"""Kafka lets in only the system's own principals, and each only where its events go:
nobody else can forge an event, and a service cannot speak for another."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from contracts.envelope import new_envelope
from contracts.events.identity import MemberJoined
from contracts.permissions import Role
from contracts.topics import Topic
from shared.settings import ServiceName, Settings

pytestmark = pytest.mark.integration

MEMBERSHIP = Topic.IDENTITY_MEMBERSHIP.value


def forged_membership() -> bytes:
    """What the attacker sent: themselves as super admin of another tenant's root."""
    root_id = uuid.uuid4()
    payload = MemberJoined(
        workspace_id=root_id,
        root_id=root_id,
        billing_root_id=root_id,
        user_id="mallory",
        email="mallory@example.test",
        role=Role.SUPER_ADMIN,
    )
    envelope = new_envelope(
        payload,
        producer="identity",
        root_id=root_id,
        workspace_id=root_id,
        actor="mallory",
        correlation_id=None,
    )
    return envelope.model_dump_json().encode()


async def produce(options: dict[str, Any], topic: str = MEMBERSHIP) -> None:
    producer = AIOKafkaProducer(**options, acks="all", request_timeout_ms=5_000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, forged_membership(), key=b"mallory")
    finally:
        await producer.stop()


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**settings.kafka_admin().client_options())
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_cannot_produce_a_forged_membership(
    settings: Settings,
) -> None:
    before = await end_offsets(settings, MEMBERSHIP)

    with pytest.raises(KafkaConnectionError):
        await produce({"bootstrap_servers": settings.kafka_bootstrap_servers})

    assert await end_offsets(settings, MEMBERSHIP) == before


async def test_a_wrong_password_is_refused(settings: Settings) -> None:
    identity = settings.kafka_for(ServiceName.IDENTITY).client_options()

    with pytest.raises(KafkaConnectionError):
        await produce({**identity, "sasl_plain_password": "guessed"})


async def test_billing_cannot_write_identitys_membership_topic(settings: Settings) -> None:
    before = await end_offsets(settings, MEMBERSHIP)

    with pytest.raises(TopicAuthorizationFailedError):
        await produce(settings.kafka_for(ServiceName.BILLING).client_options())

    assert await end_offsets(settings, MEMBERSHIP) == before


async def test_identity_writes_its_own_topic(settings: Settings) -> None:
    before = await end_offsets(settings, MEMBERSHIP)

    await produce(settings.kafka_for(ServiceName.IDENTITY).client_options())

    after = await end_offsets(settings, MEMBERSHIP)
    assert sum(after.values()) == sum(before.values()) + 1


async def read_one(options: dict[str, Any], topic: str, group_id: str | None) -> None:
    consumer = AIOKafkaConsumer(topic, **options, group_id=group_id, auto_offset_reset="earliest")
    try:
        await consumer.start()
        await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()


async def test_a_service_reads_only_the_topics_it_consumes(settings: Settings) -> None:
    identity = settings.kafka_for(ServiceName.IDENTITY).client_options()

    with pytest.raises(TopicAuthorizationFailedError):
        # identity consumes billing's limits, not the memberships it writes
        await read_one(identity, MEMBERSHIP, group_id="atrium.identity")


async def test_a_service_cannot_join_another_services_consumer_group(
    settings: Settings,
) -> None:
    """Joined to the gateway's group, billing would take the gateway's partitions and
    commit its offsets past events the gateway never applied."""
    billing = settings.kafka_for(ServiceName.BILLING).client_options()

    with pytest.raises(GroupAuthorizationFailedError):
        await read_one(billing, Topic.IDENTITY_WORKSPACE.value, group_id="atrium.gateway")
