"""billing's rules, free of I/O.

The ledger is double-entry: every movement is a transaction whose lines sum to
zero per pool. An account is one workspace's pool; the external ("world")
account of a pool is where purchases come from and where spent credits and
claimed avatar slots go. Amounts are integers.

An API key may carry a monthly credit limit: what the spends made with it (and with
the keys it was rotated from) may take per UTC calendar month, on top of what its
workspace's balances allow (`check_key_spend`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal
from uuid import UUID

from contracts import problems
from shared.errors import DomainError, ForbiddenError
from shared.inbox import EventNotYetApplicableError
from shared.read_your_writes import NotArrivedError


class Pool(StrEnum):
    GENERATIVE_CREDITS = "generative_credits"
    API_CREDITS = "api_credits"
    AVATAR_SLOTS = "avatar_slots"
    SEATS = "seats"


CONSUMABLE_POOLS: tuple[Pool, ...] = (Pool.GENERATIVE_CREDITS, Pool.API_CREDITS)
"""Credits: spent, and gone to the world when spent."""
CAPACITY_POOLS: tuple[Pool, ...] = (Pool.AVATAR_SLOTS, Pool.SEATS)
"""Limits: held, and free again when released."""


UsageGrouping = Literal["day", "operation", "api_key"]
"""How spending is added up: per UTC day, per operation or per API key."""


class TransactionKind(StrEnum):
    PLAN = "plan"
    """A billing root's plan grants its opening capacity and credits."""
    PURCHASE = "purchase"
    ALLOCATION = "allocation"
    """Moves between a parent and its `parent`-billed sub-workspace, either way."""
    SPEND = "spend"
    AVATAR_CLAIM = "avatar_claim"
    """An avatar takes a slot and pays the avatar fee, in one transaction."""
    AVATAR_RELEASE = "avatar_release"
    RECLAIM = "reclaim"
    """What a deleted workspace held goes back to its parent (or the world)."""


class Operation(StrEnum):
    AVATAR_FEE = "avatar_fee"
    VIDEO_GENERATION = "video_generation"
    """Per minute."""
    IMAGE_CREATION = "image_creation"
    TRANSLATION = "translation"
    """Per minute."""
    API_CALL = "api_call"


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Credits per unit of each operation."""

    prices: Mapping[Operation, int]

    def price(self, operation: Operation, quantity: int) -> int:
        return self.prices[operation] * quantity


@dataclass(frozen=True, slots=True)
class Plan:
    """What a billing root (a workspace with `billing_mode=own`) starts with."""

    code: str
    seats: int
    avatar_slots: int
    generative_credits: int
    api_credits: int

    def grants(self) -> dict[Pool, int]:
        """The plan's opening amount of each pool (the ones it grants at all)."""
        granted = {
            Pool.SEATS: self.seats,
            Pool.AVATAR_SLOTS: self.avatar_slots,
            Pool.GENERATIVE_CREDITS: self.generative_credits,
            Pool.API_CREDITS: self.api_credits,
        }
        return {pool: amount for pool, amount in granted.items() if amount > 0}


@dataclass(frozen=True, slots=True)
class Terms:
    """What billing grants and charges, as configured: the plan a new billing root starts
    on, the price of each operation and the balance below which a spend warns."""

    plan: Plan
    prices: PriceTable
    credits_low_threshold: int


def pool_paying_for(*, by_api_key: bool) -> Pool:
    """An operation made with an API key spends API credits; one made by a signed-in
    person spends generative credits."""
    return Pool.API_CREDITS if by_api_key else Pool.GENERATIVE_CREDITS


@dataclass(frozen=True, slots=True)
class Charge:
    """Who pays how much of one spend."""

    from_workspace: int
    from_parent: int


def split_charge(amount: int, *, own_balance: int, parent_balance: int | None) -> Charge:
    """A spend comes out of the workspace's own balance; when that runs short and the
    workspace may fall through (`parent_balance` given), the rest comes out of the
    parent's pool. Raises when the two together are short."""
    if own_balance >= amount:
        return Charge(from_workspace=amount, from_parent=0)
    from_parent = amount - own_balance
    if parent_balance is None or parent_balance < from_parent:
        raise InsufficientCreditsError(not_enough(amount))
    return Charge(from_workspace=own_balance, from_parent=from_parent)


def charge_lines(
    workspace_id: UUID, parent_id: UUID | None, pool: Pool, charge: Charge
) -> list[Line]:
    """The lines that take `charge` out of the workspace (and its parent) to the world."""
    lines = []
    if charge.from_workspace:
        lines.append(Line(workspace_id, pool, -charge.from_workspace))
    if charge.from_parent:
        assert parent_id is not None
        lines.append(Line(parent_id, pool, -charge.from_parent))
    total = charge.from_workspace + charge.from_parent
    if total:
        lines.append(Line(None, pool, total))
    return lines


def fell_below(threshold: int, *, before: int, after: int) -> bool:
    """A balance crossed the warning threshold on its way down (0 means no warning)."""
    return threshold > 0 and after < threshold <= before


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """billing's copy of an API key, as a spend made with it finds it."""

    key_id: UUID
    workspace_id: UUID
    """The one workspace the key acts in."""
    budget_id: UUID
    """Whose monthly spending the key draws on: its own id, or that of the first key of
    the line it was rotated from (a rotation keeps the key's settings, its budget too)."""
    monthly_credit_limit: int | None
    month: date
    """The first day of the spend's UTC calendar month."""
    spent: int
    """What the budget spent in `month` so far."""
    revoked: bool
    """Revoked, with effect now or earlier (a rotation's grace may still run)."""
    expired: bool
    suspended: bool


def check_key_spend(key: KeyBudget, workspace_id: UUID, amount: int) -> None:
    """A spend made with a key: the key must be usable in `workspace_id` (the gateway
    refuses other keys first; this is defence in depth), and `amount` must fit in what
    is left of its monthly limit."""
    for refused, reason in (
        (key.workspace_id != workspace_id, "key_of_another_workspace"),
        (key.revoked, "key_revoked"),
        (key.expired, "key_expired"),
        (key.suspended, "key_suspended"),
    ):
        if refused:
            raise ForbiddenError(KEY_REFUSALS[reason])
    limit = key.monthly_credit_limit
    if limit is not None and key.spent + amount > limit:
        raise KeyCreditLimitReachedError(limit_reached(limit, key.spent, amount))


KEY_REFUSALS = {
    "key_of_another_workspace": "This API key acts in another workspace.",
    "key_revoked": "This API key is revoked.",
    "key_expired": "This API key is expired.",
    "key_suspended": "This API key is suspended: its workspace's API access is off.",
}
"""Why a key may not spend, in the order it is checked (`billing.spend_batch` names the
same reasons)."""


def not_enough(amount: int, left: int | None = None) -> str:
    """What a refused spend of `amount` says; `left`: the workspace's own balance, when it
    alone was to pay."""
    return f"This costs {amount} credits; {'not enough' if left is None else left} are left."


def limit_reached(limit: int, spent: int, amount: int) -> str:
    return (
        f"This costs {amount} credits; the API key has spent {spent} of its monthly limit "
        f"of {limit} this month."
    )


@dataclass(frozen=True, slots=True)
class HeldPool:
    """What a sub-workspace holds of a pool that its parent allocates."""

    allocated: int
    """The running total granted (a cap for capacity pools)."""
    balance: int
    """What is left: unspent credits, or free slots."""


def allocation_change(pool: Pool, target: int, held: HeldPool, *, parent_balance: int) -> int:
    """How much moves from the parent to the sub-workspace (negative: back to the
    parent) to bring its allocation to `target`.

    With 300 allocated and 20 spent (balance 280): 400 moves 100 more, 100 returns
    200, 10 is below what was already used."""
    delta = target - held.allocated
    if delta < 0 and -delta > held.balance:
        used = held.allocated - held.balance
        msg = f"{pool.value}: {used} already used; the allocation cannot go below it."
        raise BelowUsageError(msg)
    if delta > parent_balance:
        msg = f"{pool.value}: the parent has {parent_balance} left to allocate, not {delta}."
        raise InsufficientBalanceError(msg)
    return delta


@dataclass(frozen=True, slots=True)
class CreditsHeld:
    """A workspace's credits of one pool: what is left, and what its parent granted."""

    balance: int
    allocated: int


@dataclass(frozen=True, slots=True)
class CapacityHeld:
    """A workspace's capacity of one pool: its limit (None: no limit of its own), and
    how much of it is taken."""

    limit: int | None
    used: int


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a transaction: `amount` into (positive) or out of (negative) a
    workspace's pool, or the world's when `workspace_id` is None."""

    workspace_id: UUID | None
    pool: Pool
    amount: int


def merged(lines: Sequence[Line]) -> list[Line]:
    """One line per account and pool: the sum of the given ones, zeros left out."""
    totals: dict[tuple[UUID | None, Pool], int] = {}
    for line in lines:
        key = (line.workspace_id, line.pool)
        totals[key] = totals.get(key, 0) + line.amount
    return [Line(workspace, pool, amount) for (workspace, pool), amount in totals.items() if amount]


def check_balanced(lines: Sequence[Line]) -> None:
    """Every transaction's lines sum to zero per pool; the database checks it again."""
    totals: dict[Pool, int] = {}
    for line in lines:
        totals[line.pool] = totals.get(line.pool, 0) + line.amount
    unbalanced = {pool: total for pool, total in totals.items() if total != 0}
    if unbalanced:
        msg = f"unbalanced transaction: {unbalanced}"
        raise ValueError(msg)


class InsufficientCreditsError(DomainError):
    problem = problems.INSUFFICIENT_CREDITS


class InsufficientBalanceError(DomainError):
    problem = problems.INSUFFICIENT_BALANCE


class BelowUsageError(DomainError):
    problem = problems.BELOW_USAGE


class NotABillingRootError(DomainError):
    problem = problems.NOT_A_BILLING_ROOT


class AvatarSlotLimitError(DomainError):
    problem = problems.AVATAR_SLOT_LIMIT


class AvatarAlreadyClaimedError(DomainError):
    problem = problems.AVATAR_ALREADY_CLAIMED


class KeyCreditLimitReachedError(DomainError):
    problem = problems.KEY_CREDIT_LIMIT_REACHED


class ApiKeyNotArrivedError(NotArrivedError):
    """A spend with a key whose `apikey.created` has not reached billing yet: it waits
    for it, as for a workspace (`shared.read_your_writes`)."""

    def __init__(self, key_id: UUID) -> None:
        super().__init__(key_id, what="API key")


class ApiAccessDisabledError(DomainError):
    problem = problems.API_ACCESS_DISABLED


class NotParentBilledError(DomainError):
    """Only a `parent`-billed sub-workspace draws on an allocation."""

    problem = problems.BILLED_ON_ITS_OWN


class AccountNotOpenYetError(EventNotYetApplicableError):
    """An event about a workspace whose `workspace.created` has not arrived yet: the
    consumer raises it so that the event is retried once that has come, not dropped."""


class KeyNotKnownYetError(EventNotYetApplicableError):
    """An event about a key whose `apikey.created` has not been applied yet."""
