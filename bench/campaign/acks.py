"""What the workload saw acknowledged: every write the gateway answered with a 2xx, in
the order the answers came, so that afterwards each can be looked for where its
service of record keeps it (unless a later acknowledged write undid it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Write(StrEnum):
    ROOT_CREATED = "root_created"
    """`id`: the root workspace (the account)."""
    SUB_WORKSPACE_CREATED = "sub_workspace_created"
    """`id`: the sub-workspace; `detail`: `parent_id`, `billing_mode`."""
    WORKSPACE_DELETED = "workspace_deleted"
    """`id`: the workspace (202 answered)."""
    PURCHASE = "purchase"
    """`detail`: `pool`, `quantity` (and `transaction_id` when the answer has one)."""
    ALLOCATION = "allocation"
    """`id`: the sub-workspace; `detail`: the allocation as answered."""
    SPEND = "spend"
    """`id`: the ledger transaction; `detail`: `pool`, `amount`, `idempotency_key`,
    `api_key_id` when spent with a key."""
    INVITATION = "invitation"
    """`id`: the invitation; `detail`: `email`, `role`."""
    ACCEPTANCE = "acceptance"
    """`id`: the invitation; `detail`: `user_id`."""
    REMOVAL = "removal"
    """`id`: the user removed (or who left)."""
    KEY_CREATED = "key_created"
    """`id`: the key."""
    KEY_REVOKED = "key_revoked"
    """`id`: the key."""
    ASSET_CREATED = "asset_created"
    """`id`: the asset; `detail`: `kind`."""
    ASSET_DELETED = "asset_deleted"
    """`id`: the asset."""
    SHARE = "share"
    """`id`: the asset; `detail`: `targets` (workspace ids)."""
    UNSHARE = "unshare"
    """`id`: the asset; `detail`: `target`."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """One write answered 2xx: `sequence` orders the answers as the workload got them.

    With `answered` False, a write that undoes or replaces (a deletion, a revocation, a
    removal, an unshare, an allocation: a PUT carries no Idempotency-Key) whose outcome
    is unknown: no answer came, or a 5xx, and no later attempt was answered 2xx — it may
    have been applied. It is never looked for, but what it would have undone or replaced
    is not looked for after it either."""

    sequence: int
    write: Write
    root_id: str
    workspace_id: str
    id: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)
    answered: bool = True
