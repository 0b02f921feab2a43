"""The envelope every Atrium event travels in.

The message key on Kafka is `root_id`, so all events of one account stay in
order within one partition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from contracts.topics import Topic


class EventPayload(BaseModel):
    """Base of every event's `data`: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    topic: ClassVar[Topic]


DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(description="Unique id; consumers use it to apply an event once.")
    type: str = Field(description="`<aggregate>.<past_tense_verb>`, e.g. `workspace.created`.")
    version: int = Field(ge=1, description="Version of the payload schema for this type.")
    occurred_at: datetime = Field(description="When the change was committed (UTC).")
    producer: str = Field(description="The service that owns the change.")
    root_id: UUID = Field(description="The account's root workspace; also the message key.")
    workspace_id: UUID | None = Field(description="The workspace the event is about, if any.")
    actor: str | None = Field(
        description="Who caused it: `user:<id>`, `apikey:<id>` or `system`.",
    )
    correlation_id: str | None = Field(
        description="The request id that started the chain of events.",
    )
    causation_id: UUID | None = Field(description="The event that caused this one, if any.")
    data: DataT = Field(description="The type-specific payload.")


RawEnvelope = Envelope[dict[str, Any]]
"""An envelope as a consumer first reads it, before its type is known."""


def new_envelope(
    payload: EventPayload,
    *,
    producer: str,
    root_id: UUID,
    workspace_id: UUID | None,
    actor: str | None,
    correlation_id: str | None,
    causation_id: UUID | None = None,
) -> Envelope[EventPayload]:
    # Parametrised with the concrete payload class, so that serialising the envelope
    # writes the payload's own fields rather than those of the EventPayload base.
    concrete: type[Envelope[EventPayload]] = Envelope[type(payload)]  # type: ignore[misc,assignment]
    return concrete(
        event_id=uuid4(),
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=datetime.now(UTC),
        producer=producer,
        root_id=root_id,
        workspace_id=workspace_id,
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
        data=payload,
    )
