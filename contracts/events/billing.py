"""Events published by `billing`, keyed by the account's root workspace id."""

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.envelope import EventPayload
from contracts.topics import Topic


class LimitsChanged(EventPayload):
    """The capacity limits of a workspace changed (or were first set). Identity
    enforces seats from it, assets enforces avatar slots."""

    event_type: ClassVar[str] = "limits.changed"
    event_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.BILLING_LIMITS

    workspace_id: UUID
    root_id: UUID
    billing_root_id: UUID
    seats_limit: int | None = Field(
        ge=0, description="The seat pool's limit; set on billing roots, null elsewhere."
    )
    seats_cap: int | None = Field(
        ge=0, description="A cap on one sub-workspace's seats within its pool, if any."
    )
    avatar_slots_limit: int | None = Field(
        ge=0,
        description="Avatar slots the workspace may hold: the plan's on a billing root, "
        "the allocation on a `parent`-billed sub-workspace.",
    )
