"""Event payloads by producer, and the registry that maps `(type, version)` to a payload."""

from contracts.envelope import EventPayload, RawEnvelope
from contracts.events.apikeys import ApiKeyCreated, ApiKeyRestored, ApiKeyRevoked, ApiKeySuspended
from contracts.events.assets import (
    AssetCreated,
    AssetDeleted,
    AssetShared,
    AssetUnshared,
    AssetUpdated,
)
from contracts.events.billing import CreditsLow, LimitsChanged, TransactionPosted
from contracts.events.gateway import ApiRequestsRecorded
from contracts.events.identity import (
    InvitationAccepted,
    InvitationCreated,
    InvitationDeclined,
    InvitationExpired,
    InvitationRevoked,
    MemberJoined,
    MemberRemoved,
    MemberRoleChanged,
    SeatsCapChanged,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
    WorkspaceUpdated,
)

EVENT_PAYLOADS: tuple[type[EventPayload], ...] = (
    WorkspaceCreated,
    WorkspaceUpdated,
    WorkspaceSettingsChanged,
    WorkspaceDeletionStarted,
    WorkspaceDeleted,
    MemberJoined,
    MemberRoleChanged,
    MemberRemoved,
    InvitationCreated,
    InvitationAccepted,
    InvitationDeclined,
    InvitationRevoked,
    InvitationExpired,
    SeatsUsageChanged,
    SeatsCapChanged,
    LimitsChanged,
    TransactionPosted,
    CreditsLow,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeySuspended,
    ApiKeyRestored,
    ApiRequestsRecorded,
    AssetCreated,
    AssetUpdated,
    AssetDeleted,
    AssetShared,
    AssetUnshared,
)

_BY_TYPE: dict[tuple[str, int], type[EventPayload]] = {
    (payload.event_type, payload.event_version): payload for payload in EVENT_PAYLOADS
}


def payload_class(event_type: str, version: int) -> type[EventPayload] | None:
    """The payload model of a known event, or None for a type this version does not know."""
    return _BY_TYPE.get((event_type, version))


def parse_payload(envelope: RawEnvelope) -> EventPayload | None:
    model = payload_class(envelope.type, envelope.version)
    return None if model is None else model.model_validate(envelope.data)


__all__ = ["EVENT_PAYLOADS", "parse_payload", "payload_class"]
