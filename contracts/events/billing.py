"""Events published by `billing`, keyed by the account's root workspace id."""

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EventPayload
from contracts.topics import Topic


class LimitsChanged(EventPayload):
    """The capacity limits of a workspace changed (or were first set). Identity
    enforces a pool's seats from it, assets enforces avatar slots."""

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
        ge=0,
        description="billing's copy of the workspace's seat cap, which identity sets and "
        "announces in `seats.cap_changed`; identity does not apply it back.",
    )
    avatar_slots_limit: int | None = Field(
        ge=0,
        description="Avatar slots the workspace may hold: the plan's on a billing root, "
        "the allocation on a `parent`-billed sub-workspace.",
    )


class LedgerLine(BaseModel):
    """One line of a ledger transaction: an amount into (positive) or out of (negative)
    one account's pool. The lines of a transaction sum to zero per pool."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_id: UUID | None = Field(
        description="The workspace whose account the line moves; null for the external "
        "(world) account that purchases come from and spends go to."
    )
    pool: str = Field(description="`generative_credits`, `api_credits`, `avatar_slots` or `seats`.")
    amount: int = Field(description="Signed: positive into the account, negative out of it.")


class TransactionPosted(EventPayload):
    """A balanced transaction was posted to the ledger."""

    event_type: ClassVar[str] = "transaction.posted"
    event_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.BILLING_LEDGER

    transaction_id: UUID
    workspace_id: UUID = Field(description="The workspace the transaction was made for.")
    root_id: UUID
    kind: str = Field(
        description="`plan`, `purchase`, `allocation`, `spend`, `avatar_claim`, "
        "`avatar_release` or `reclaim`."
    )
    operation: str | None = Field(default=None, description="What a spend paid for.")
    api_key_id: UUID | None = Field(default=None, description="The API key that spent, if any.")
    lines: tuple[LedgerLine, ...] = Field(
        description="Summing to zero per pool; none for a spend that cost nothing."
    )


class CreditsLow(EventPayload):
    """A spend took a workspace's credits below the warning threshold (announced once,
    as the balance crosses it)."""

    event_type: ClassVar[str] = "credits.low"
    event_version: ClassVar[int] = 1
    topic: ClassVar[Topic] = Topic.BILLING_LIMITS

    workspace_id: UUID
    root_id: UUID
    pool: str = Field(description="`generative_credits` or `api_credits`.")
    balance: int = Field(ge=0, description="What is left after the spend.")
    threshold: int = Field(ge=1, description="The configured warning threshold it fell below.")
