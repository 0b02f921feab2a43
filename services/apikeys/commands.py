"""What apikeys can be asked to do: one frozen command per use case. A command carries
everything its use case needs, the caller included; an endpoint, a consumer or a test
builds it and hands it, with a unit of work, to the use case of the same name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from contracts.events.apikeys import KeyRateLimit
from contracts.events.billing import LedgerLine
from contracts.events.gateway import RecordedRequest
from shared.principal import Principal

# Keys


@dataclass(frozen=True, slots=True)
class CreateApiKey:
    caller: Principal
    workspace_id: uuid.UUID
    name: str
    expires_at: datetime | None
    rate_limit: KeyRateLimit | None
    monthly_credit_limit: int | None
    pepper: str


@dataclass(frozen=True, slots=True)
class RotateApiKey:
    caller: Principal
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    grace_seconds: int
    pepper: str


@dataclass(frozen=True, slots=True)
class RevokeApiKey:
    caller: Principal
    workspace_id: uuid.UUID
    key_id: uuid.UUID


# Reads


@dataclass(frozen=True, slots=True)
class ListApiKeys:
    caller: Principal
    workspace_id: uuid.UUID
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ReadKeyUsage:
    caller: Principal
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    first: date | None
    last: date | None


@dataclass(frozen=True, slots=True)
class ReadWorkspaceUsage:
    caller: Principal
    workspace_id: uuid.UUID
    first: date | None
    last: date | None


@dataclass(frozen=True, slots=True)
class LookUpKey:
    """The gateway asks about a key its projection does not know (yet)."""

    caller: Principal
    key_hash: str


# Workspaces (identity's events)


@dataclass(frozen=True, slots=True)
class RecordWorkspace:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID
    api_access: bool


@dataclass(frozen=True, slots=True)
class ChangeApiAccess:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    api_access: bool


@dataclass(frozen=True, slots=True)
class StartWorkspaceDeletion:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DeleteWorkspace:
    workspace_id: uuid.UUID
    parent_id: uuid.UUID | None
    root_id: uuid.UUID


# Usage (the gateway's and billing's events)


@dataclass(frozen=True, slots=True)
class CountRequests:
    workspace_id: uuid.UUID
    requests: tuple[RecordedRequest, ...]


@dataclass(frozen=True, slots=True)
class CountCreditsSpent:
    workspace_id: uuid.UUID
    api_key_id: uuid.UUID
    lines: tuple[LedgerLine, ...]
    day: date
