"""identity's rules, free of I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.events.identity import BillingMode
from contracts.permissions import Role


class WorkspaceStatus(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"


@dataclass(frozen=True, slots=True)
class Workspace:
    id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    depth: int
    name: str
    image_url: str | None
    billing_mode: BillingMode
    api_access: bool
    strict_quota: bool
    status: WorkspaceStatus
    created_at: datetime | None = None


def new_root_workspace(name: str, image_url: str | None) -> Workspace:
    """A root is the account itself: it always pays for itself and starts with API
    access on, so its Super Admin can manage keys from the start."""
    workspace_id = uuid.uuid4()
    return Workspace(
        id=workspace_id,
        parent_id=None,
        root_id=workspace_id,
        depth=0,
        name=name,
        image_url=image_url,
        billing_mode=BillingMode.OWN,
        api_access=True,
        strict_quota=True,
        status=WorkspaceStatus.ACTIVE,
    )


FOUNDER_ROLE = Role.SUPER_ADMIN
"""The person who creates a root workspace becomes its first Super Admin."""
