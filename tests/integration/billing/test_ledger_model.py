"""The ledger against a model of it: a hypothesis state machine drives billing (its app on
the test session's PostgreSQL, events handed to its consumer as Kafka would) through
purchases, allocations up and down, spends by people and by API keys with monthly
limits, retried spends and strict quotas switched on and off, and after every step
compares what billing shows with a few dictionaries that follow the rules of
DESIGN.md ("Credits and limits", "API keys"):

- a spend is taken from the workspace's own balance; where the quota is not strict
  and that runs short, the rest comes from the parent's pool; otherwise it is 402
  `insufficient-credits` and nothing changes;
- a spend with a key draws API credits and must fit in what is left of the key's
  monthly limit (402 `key-credit-limit-reached`), checked before the balances;
- an allocation moves the difference from or to the parent (409 `below-usage` below
  what was spent of it, 409 `insufficient-balance` past what the parent has);
- a retry with the same Idempotency-Key answers the first receipt and changes nothing;
  the same key with another body is 422 `idempotency-key-reused`.

Every step must give the status (and problem type) the model predicts; after every
step each balance and allocation billing shows is the model's, each key has spent
what the model says and no more than its limit, every transaction balances and every
balance is the sum of its ledger lines and not negative.

A longer run (see `tests/stateful.py`):

    ATRIUM_MODEL_EXAMPLES=200 ATRIUM_MODEL_STEPS=60 .venv/bin/pytest -p no:cacheprovider \
        tests/integration/billing/test_ledger_model.py -q
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from contracts.events.identity import BillingMode
from tests.integration.billing.conftest import BillingDriver, Workspace
from tests.stateful import LoopDrivenMachine, model_settings, run_machine, within_time

pytestmark = pytest.mark.integration

PRICES = {"image_creation": 2, "video_generation": 10, "translation": 5, "api_call": 0}
"""The default prices (DESIGN.md), per unit."""
CREDIT_POOLS = ("generative_credits", "api_credits")
MAX_KEYS = 5
OPENING_PURCHASE = 200
"""Credits of each pool the root buys first, so that most runs have some to move."""

workspaces = st.integers(0, 2)
"""The root, a sub-workspace that starts strict and one that starts falling through."""
subs = st.integers(1, 2)
operations = st.sampled_from(sorted(PRICES))
quantities = st.integers(1, 5)
limits = st.none() | st.sampled_from([0, 10, 20, 40])
"""Monthly credit limits that spends of these prices and quantities reach exactly."""


@dataclass
class Held:
    """What the model says a workspace holds of each credit pool."""

    balance: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CREDIT_POOLS, 0))
    allocated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CREDIT_POOLS, 0))
    strict_quota: bool = True


@dataclass
class Key:
    id: uuid.UUID
    workspace: int
    monthly_credit_limit: int | None
    spent: int = 0

    def allows(self, amount: int) -> bool:
        limit = self.monthly_credit_limit
        return limit is None or self.spent + amount <= limit


@dataclass
class Spend:
    """A spend as it was sent, to be sent again; `receipt` once one was given."""

    workspace: int
    key: int | None
    operation: str
    quantity: int
    idempotency_key: str
    receipt: dict[str, Any] | None = None


@dataclass
class Ledger:
    """The model: a root and its two `parent`-billed sub-workspaces, and their keys."""

    held: list[Held]
    keys: list[Key] = field(default_factory=list)

    def falls_through(self, workspace: int) -> bool:
        return workspace != 0 and not self.held[workspace].strict_quota

    def spend(self, workspace: int, pool: str, amount: int, key: Key | None) -> str | None:
        """Take the spend as billing should; the problem type that refuses it, if any."""
        if key is not None and not key.allows(amount):
            return "key-credit-limit-reached"
        own = self.held[workspace].balance[pool]
        from_parent = max(0, amount - own)
        if from_parent and not (
            self.falls_through(workspace) and self.held[0].balance[pool] >= from_parent
        ):
            return "insufficient-credits"
        self.held[workspace].balance[pool] -= amount - from_parent
        self.held[0].balance[pool] -= from_parent
        if key is not None:
            key.spent += amount
        return None

    def allocate(self, sub: int, pool: str, target: int) -> str | None:
        held = self.held[sub]
        delta = target - held.allocated[pool]
        if delta < 0 and -delta > held.balance[pool]:
            return "below-usage"
        if delta > self.held[0].balance[pool]:
            return "insufficient-balance"
        held.allocated[pool] = target
        held.balance[pool] += delta
        self.held[0].balance[pool] -= delta
        return None


def problem_type(response: httpx.Response) -> str | None:
    """The problem's type of a refusal; None for a success."""
    if response.is_success:
        return None
    assert response.headers["content-type"] == "application/problem+json", response.text
    slug: str = response.json()["type"]
    return slug


class LedgerMachine(LoopDrivenMachine):
    driver: ClassVar[BillingDriver]

    def __init__(self) -> None:
        super().__init__()
        root = self.wait_for(self.driver.root())
        self.workspaces: list[Workspace] = [
            root,
            self.wait_for(self.driver.sub(root, strict_quota=True)),
            self.wait_for(self.driver.sub(root, strict_quota=False)),
        ]
        self.model = Ledger([Held(), Held(strict_quota=True), Held(strict_quota=False)])
        self.spends: list[Spend] = []
        for pool in CREDIT_POOLS:
            self.purchase(pool, OPENING_PURCHASE)

    # Steps ----------------------------------------------------------------------------

    @rule(pool=st.sampled_from(CREDIT_POOLS), quantity=st.integers(1, 100))
    def purchase(self, pool: str, quantity: int) -> None:
        self.wait_for(self.driver.purchase(self.workspaces[0], pool, quantity))
        self.model.held[0].balance[pool] += quantity

    @rule(sub=subs, pool=st.sampled_from(CREDIT_POOLS), allocation=st.integers(0, 150))
    def allocate(self, sub: int, pool: str, allocation: int) -> None:
        response = self.wait_for(self.driver.allocate(self.workspaces[sub], **{pool: allocation}))
        refused = self.model.allocate(sub, pool, allocation)
        assert problem_type(response) == refused, response.text
        if refused is None:
            assert response.status_code == 200
            assert response.json()[pool] == allocation

    @rule(sub=subs)
    def switch_strict_quota(self, sub: int) -> None:
        held = self.model.held[sub]
        held.strict_quota = not held.strict_quota
        self.wait_for(
            self.driver.change_settings(
                self.workspaces[sub],
                billing_mode=BillingMode.PARENT,
                strict_quota=held.strict_quota,
            )
        )

    @precondition(lambda self: len(self.model.keys) < MAX_KEYS)
    @rule(workspace=workspaces, limit=limits)
    def create_key(self, workspace: int, limit: int | None) -> None:
        key_id = self.wait_for(
            self.driver.create_key(self.workspaces[workspace], monthly_credit_limit=limit)
        )
        self.model.keys.append(Key(key_id, workspace, limit))

    @rule(workspace=workspaces, operation=operations, quantity=quantities)
    def spend_as_a_person(self, workspace: int, operation: str, quantity: int) -> None:
        self.send(Spend(workspace, None, operation, quantity, str(uuid.uuid4())))

    @precondition(lambda self: self.model.keys)
    @rule(key=st.integers(0, MAX_KEYS - 1), operation=operations, quantity=quantities)
    def spend_with_a_key(self, key: int, operation: str, quantity: int) -> None:
        key %= len(self.model.keys)
        workspace = self.model.keys[key].workspace
        self.send(Spend(workspace, key, operation, quantity, str(uuid.uuid4())))

    @precondition(lambda self: self.spends)
    @rule(which=st.integers(0, 1_000))
    def retry_a_spend(self, which: int) -> None:
        """Sent again with its Idempotency-Key: the first receipt, or (when it was
        refused, which remembers nothing) decided again as a new spend."""
        self.send(self.spends[which % len(self.spends)], again=True)

    @precondition(lambda self: any(spend.receipt for spend in self.spends))
    @rule(which=st.integers(0, 1_000))
    def reuse_an_idempotency_key_for_another_spend(self, which: int) -> None:
        spent = [spend for spend in self.spends if spend.receipt]
        first = spent[which % len(spent)]
        other = Spend(
            first.workspace, first.key, first.operation, first.quantity + 1, first.idempotency_key
        )
        response = self.wait_for(self.post_spend(other, self.key_of(other)))
        assert response.status_code == 422, response.text
        assert problem_type(response) == "idempotency-key-reused"

    @precondition(lambda self: self.model.keys)
    @rule(key=st.integers(0, MAX_KEYS - 1), elsewhere=st.integers(1, 2))
    def spend_with_a_key_of_another_workspace(self, key: int, elsewhere: int) -> None:
        chosen = self.model.keys[key % len(self.model.keys)]
        workspace = (chosen.workspace + elsewhere) % len(self.workspaces)
        response = self.wait_for(
            self.post_spend(Spend(workspace, None, "image_creation", 1, str(uuid.uuid4())), chosen)
        )
        assert response.status_code == 403, response.text

    # Checks after every step ----------------------------------------------------------

    @invariant()
    def balances_and_allocations_are_the_models(self) -> None:
        for workspace, held in zip(self.workspaces, self.model.held, strict=True):
            shown = self.wait_for(self.driver.balances(workspace))
            for pool in CREDIT_POOLS:
                assert shown[pool] == {
                    "balance": held.balance[pool],
                    "allocated": held.allocated[pool],
                }, (workspace.id, pool)

    @invariant()
    def each_key_spent_what_the_model_says_within_its_limit(self) -> None:
        for key in self.model.keys:
            spent = self.wait_for(self.driver.key_spent(key.id))
            assert spent == key.spent
            assert key.monthly_credit_limit is None or spent <= key.monthly_credit_limit

    @invariant()
    def the_ledger_balances(self) -> None:
        self.wait_for(self.driver.assert_ledger_consistent(self.workspaces))

    # ----------------------------------------------------------------------------------

    def send(self, spend: Spend, *, again: bool = False) -> None:
        """Send the spend; its answer must be the model's."""
        key = self.key_of(spend)
        response = self.wait_for(self.post_spend(spend, key))
        if spend.receipt is not None:
            assert response.status_code == 201, response.text
            assert response.json() == spend.receipt
            return
        pool = "generative_credits" if key is None else "api_credits"
        amount = PRICES[spend.operation] * spend.quantity
        refused = self.model.spend(spend.workspace, pool, amount, key)
        assert problem_type(response) == refused, response.text
        if refused is not None:
            assert response.status_code == 402
        else:
            assert response.status_code == 201
            receipt = response.json()
            assert (receipt["pool"], receipt["amount"], receipt["balance_after"]) == (
                pool,
                amount,
                self.model.held[spend.workspace].balance[pool],
            )
            spend.receipt = receipt
        if not again:
            self.spends.append(spend)

    def key_of(self, spend: Spend) -> Key | None:
        return None if spend.key is None else self.model.keys[spend.key]

    async def post_spend(self, spend: Spend, key: Key | None) -> httpx.Response:
        caller: dict[str, Any] = {} if key is None else {"api_key_id": key.id}
        return await self.driver.spend(
            self.workspaces[spend.workspace],
            spend.operation,
            spend.quantity,
            key=spend.idempotency_key,
            **caller,
        )


@within_time
async def test_the_ledger_does_what_its_model_says(driver: BillingDriver) -> None:
    await run_machine(LedgerMachine, model_settings(examples=6, steps=30), driver=driver)
