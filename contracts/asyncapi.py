"""The AsyncAPI document of every Atrium event, generated from the contracts."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts.envelope import Envelope
from contracts.events import EVENT_PAYLOADS


def asyncapi_document(bootstrap_servers: str = "localhost:9092") -> dict[str, Any]:
    broker = KafkaBroker(bootstrap_servers)
    for payload in EVENT_PAYLOADS:
        broker.publisher(
            payload.topic.value,
            title=f"{payload.topic.value}:{payload.event_type}.v{payload.event_version}",
            description=(payload.__doc__ or payload.event_type)
            + f" Message key: the account's root_id. Envelope `type` is "
            f"`{payload.event_type}`, `version` {payload.event_version}.",
            schema=Envelope[payload],  # type: ignore[valid-type]
        )
    specification = AsyncAPI(
        broker,
        title="Atrium events",
        version="1.0.0",
        description="Events that Atrium's services publish on Kafka. Every message is an "
        "envelope keyed by the account's root workspace id.",
    ).to_specification()
    document: dict[str, Any] = specification.to_jsonable()
    return document
