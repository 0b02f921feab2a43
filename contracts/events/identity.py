"""Events published by `identity`."""

from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.envelope import EventPayload
from contracts.topics import Topic


class BillingMode(StrEnum):
    PARENT = "parent"
    """The parent pays: the workspace draws only on what the parent allocated to it."""
    OWN = "own"
    """It has its own subscription, credits, seats and avatar slots."""


class WorkspaceCreated(EventPayload):
    """A workspace (a root or a sub-workspace) now exists."""

    event_type: ClassVar[str] = "workspace.created"
    event_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.IDENTITY_WORKSPACE

    id: UUID = Field(description="The new workspace.")
    parent_id: UUID | None = Field(description="Its parent; null for a root.")
    root_id: UUID = Field(description="The account's root workspace.")
    billing_root_id: UUID = Field(
        description="Nearest ancestor-or-self with `billing_mode=own`: whose seats and "
        "purchases it uses.",
    )
    depth: int = Field(ge=0, description="0 for a root, 1 for its children, and so on.")
    name: str = Field(min_length=1, max_length=100, description="Display name.")
    billing_mode: BillingMode = Field(description="Who pays for it.")
    api_access: bool = Field(description="May it see API settings and hold API keys.")
    strict_quota: bool = Field(
        description="On: it spends only what was allocated to it; off: it falls through "
        "to the parent's pool when its allocation runs out.",
    )
