"""Spends in batches (group commit): concurrent spends share one transaction, and each
still succeeds or is refused on its own, exactly as it would alone."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import Envelope
from contracts.events.billing import CreditsLow, LedgerLine, TransactionPosted
from contracts.permissions import Role
from services.billing.app import create_app
from shared.settings import Settings
from tests.integration.billing.conftest import BillingDriver, Workspace, billing_settings

pytestmark = pytest.mark.integration

SPENDS = 64


class Batched:
    """billing apps that batch spends as a test needs, stopped after it."""

    def __init__(self, settings: Settings, admin_engine: AsyncEngine) -> None:
        self.settings = settings
        self.admin_engine = admin_engine
        self.apps: list[FastAPI] = []

    def driver(self, *, max_spends: int, wait_ms: float = 5_000) -> BillingDriver:
        """Spends share a transaction until `max_spends` came (or `wait_ms` passed)."""
        app = create_app(
            billing_settings(self.settings).model_copy(
                update={"billing_spend_batch_ms": wait_ms, "billing_spend_batch_max": max_spends}
            )
        )
        self.apps.append(app)
        return BillingDriver(
            app=app, admin_engine=self.admin_engine, secret=self.settings.internal_secret
        )


@pytest.fixture
async def batched(settings: Settings, admin_engine: AsyncEngine) -> AsyncIterator[Batched]:
    apps = Batched(settings, admin_engine)
    yield apps
    for app in apps.apps:
        await app.state.runtime.stop()


async def transactions_holding_the_spends(driver: BillingDriver, workspace: Workspace) -> int:
    """How many database transactions the workspace's spends committed in (`created_at`
    is the transaction's start)."""
    async with driver.admin_engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(DISTINCT created_at) FROM billing.transactions"
                " WHERE workspace_id = :w AND kind = 'spend'"
            ),
            {"w": workspace.id},
        )
    return int(count or 0)


async def spend_at_once(
    driver: BillingDriver, spends: list[tuple[Workspace, dict[str, Any]]]
) -> list[httpx.Response]:
    async with driver.client() as client:
        return list(
            await asyncio.gather(
                *(
                    driver.spend(workspace, **{"client": client} | spend)
                    for workspace, spend in spends
                )
            )
        )


async def staged_row(
    driver: BillingDriver,
    event_type: str,
    transaction_id: str | None,
    *,
    workspace: Workspace | None = None,
) -> Any:
    """The outbox row of the event staged for the transaction (or the workspace)."""
    async with driver.admin_engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT topic, message_key, event_type, envelope FROM billing.outbox"
                    " WHERE event_type = :t AND (envelope::jsonb -> 'data' ->> 'transaction_id'"
                    " = :tx OR envelope::jsonb ->> 'workspace_id' = :w)"
                ),
                {
                    "t": event_type,
                    "tx": transaction_id,
                    "w": None if workspace is None else str(workspace.id),
                },
            )
        ).one()


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


async def test_spends_racing_for_the_last_credits_in_one_batch_let_exactly_the_affordable_through(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=SPENDS)
    root = await one_batch.root(generative_credits=10 * 23 + 7)

    responses = await spend_at_once(
        one_batch, [(root, {"operation": "image_creation", "quantity": 5})] * SPENDS
    )

    assert statuses(responses) == {201: 23, 402: SPENDS - 23}
    assert await transactions_holding_the_spends(one_batch, root) == 1
    assert await one_batch.balance(root) == 7
    assert await one_batch.ledger_sum(root) == 7
    balances_after = sorted(r.json()["balance_after"] for r in responses if r.status_code == 201)
    assert balances_after == [7 + 10 * n for n in range(23)]


async def test_spends_racing_for_the_last_credits_across_batches_never_overspend(
    batched: Batched,
) -> None:
    small_batches = batched.driver(max_spends=8, wait_ms=20)
    root = await small_batches.root(generative_credits=10 * 23 + 7)

    responses = await spend_at_once(
        small_batches, [(root, {"operation": "image_creation", "quantity": 5})] * SPENDS
    )

    assert statuses(responses) == {201: 23, 402: SPENDS - 23}
    assert await transactions_holding_the_spends(small_batches, root) > 1
    assert await small_batches.balance(root) == 7
    assert await small_batches.ledger_sum(root) == 7


async def test_a_refused_spend_in_a_batch_changes_nothing_and_the_others_go_through(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=5)
    rich = await one_batch.root(generative_credits=100)
    poor = await one_batch.root(generative_credits=5)
    closed = await one_batch.root(generative_credits=100)
    await one_batch.delete(closed)
    limited_key = await one_batch.create_key(rich, monthly_credit_limit=4)
    await one_batch.purchase(rich, "api_credits", 100)

    responses = await spend_at_once(
        one_batch,
        [
            (rich, {"operation": "image_creation", "quantity": 1}),
            (poor, {"operation": "image_creation", "quantity": 3, "key": "poor-render"}),
            (rich, {"operation": "translation", "quantity": 1, "api_key_id": limited_key}),
            (closed, {"operation": "image_creation", "quantity": 1}),
            (rich, {"operation": "image_creation", "quantity": 2}),
        ],
    )

    assert [response.status_code for response in responses] == [201, 402, 402, 404, 201]
    assert responses[1].json()["type"] == "insufficient-credits"
    assert responses[2].json()["type"] == "key-credit-limit-reached"
    assert await transactions_holding_the_spends(one_batch, rich) == 1
    assert await one_batch.balance(rich) == 94
    assert await one_batch.balance(rich, "api_credits") == 100
    assert await one_batch.key_spent(limited_key) == 0
    assert await one_batch.balance(poor) == 5
    # Nothing of the refused spend was kept, not even its key: once the credits are
    # there, the same request goes through.
    await one_batch.purchase(poor, "generative_credits", 10)
    retried = await batched.driver(max_spends=1).spend(poor, "image_creation", 3, key="poor-render")
    assert retried.status_code == 201
    assert retried.json()["balance_after"] == 9


async def test_a_spend_made_in_a_batch_retried_with_its_key_returns_the_first_result(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=6)
    root = await one_batch.root(generative_credits=100)

    first = await spend_at_once(
        one_batch,
        [(root, {"operation": "image_creation", "quantity": 5, "key": "render-7"})]
        + [(root, {"operation": "image_creation", "quantity": 1})] * 5,
    )
    alone = batched.driver(max_spends=1)  # another process: a retry may reach any
    again = await alone.spend(root, "image_creation", 5, key="render-7")
    other_body = await alone.spend(root, "image_creation", 6, key="render-7")

    assert statuses(first) == {201: 6}
    assert again.status_code == 201
    assert again.json() == first[0].json()
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "idempotency-key-reused"
    assert await one_batch.balance(root) == 100 - 10 - 5 * 2
    assert await one_batch.ledger_sum(root) == await one_batch.balance(root)


async def test_retries_of_one_spend_arriving_together_have_one_effect(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=10, wait_ms=50)
    root = await one_batch.root(generative_credits=100)

    responses = await spend_at_once(
        one_batch, [(root, {"operation": "image_creation", "quantity": 5, "key": "same"})] * 10
    )

    assert statuses(responses) == {201: 10}
    assert len({response.json()["transaction_id"] for response in responses}) == 1
    assert await one_batch.balance(root) == 90


async def test_spends_falling_through_to_the_parent_in_one_batch_never_overspend(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=SPENDS)
    root = await one_batch.root(generative_credits=10 * 20 + 3)
    child = await one_batch.sub(root, strict_quota=False)
    await one_batch.allocate(child, generative_credits=10 * 5 + 4)  # the parent keeps 149

    responses = await spend_at_once(
        one_batch,
        [(child, {"operation": "image_creation", "quantity": 5})] * (SPENDS - 16)
        + [(root, {"operation": "image_creation", "quantity": 5})] * 16,
    )

    assert statuses(responses) == {201: 20, 402: SPENDS - 20}
    assert await one_batch.balance(child) + await one_batch.balance(root) == 3
    for workspace in (root, child):
        assert await one_batch.ledger_sum(workspace) == await one_batch.balance(workspace)
    # The child alone affords 5 spends and the parent at most 14: the child's others
    # were paid by the parent.
    drawing_on_the_parent = [
        event
        for event in await one_batch.staged_events("transaction.posted", child)
        if any(line["workspace_id"] == str(root.id) for line in event["lines"])
    ]
    assert drawing_on_the_parent


async def test_spends_with_a_key_in_one_batch_stay_within_its_monthly_limit(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=10)
    root = await one_batch.root(api_credits=1_000)
    key = await one_batch.create_key(root, monthly_credit_limit=32)

    responses = await spend_at_once(
        one_batch,
        [(root, {"operation": "translation", "quantity": 2, "api_key_id": key})] * 10,
    )

    assert statuses(responses) == {201: 3, 402: 7}
    assert {r.json()["type"] for r in responses if r.status_code == 402} == {
        "key-credit-limit-reached"
    }
    assert await one_batch.key_spent(key) == 30
    assert await one_batch.balance(root, "api_credits") == 970


async def test_the_events_a_batched_spend_stages_are_what_the_contracts_describe(
    batched: Batched,
) -> None:
    one_batch = batched.driver(max_spends=1)
    root = await one_batch.root(generative_credits=105)
    key = await one_batch.create_key(root)
    await one_batch.purchase(root, "api_credits", 50)

    response = await one_batch.spend(root, "image_creation", 3)
    by_key = await one_batch.spend(root, "api_call", 1, api_key_id=key)

    receipt = response.json()
    posted = await staged_row(one_batch, "transaction.posted", receipt["transaction_id"])
    low = await staged_row(one_batch, "credits.low", None, workspace=root)
    free = await staged_row(one_batch, "transaction.posted", by_key.json()["transaction_id"])
    assert (posted.topic, posted.message_key) == ("atrium.billing.ledger", str(root.id))
    assert (low.topic, low.event_type) == ("atrium.billing.limits", "credits.low")
    posted_envelope = Envelope[TransactionPosted].model_validate_json(posted.envelope)
    low_envelope = Envelope[CreditsLow].model_validate_json(low.envelope)
    assert posted_envelope.data == TransactionPosted(
        transaction_id=uuid.UUID(receipt["transaction_id"]),
        workspace_id=root.id,
        root_id=root.id,
        kind="spend",
        operation="image_creation",
        api_key_id=None,
        lines=(
            LedgerLine(workspace_id=root.id, pool="generative_credits", amount=-6),
            LedgerLine(workspace_id=None, pool="generative_credits", amount=6),
        ),
    )
    assert low_envelope.data == CreditsLow(
        workspace_id=root.id, root_id=root.id, pool="generative_credits", balance=99, threshold=100
    )
    for envelope in (posted_envelope, low_envelope):
        assert (envelope.producer, envelope.root_id) == ("billing", root.id)
        assert envelope.version == 1
        assert envelope.occurred_at.utcoffset() is not None
    free_envelope = Envelope[TransactionPosted].model_validate_json(free.envelope)
    assert by_key.status_code == 201
    assert free_envelope.data.api_key_id == key
    assert free_envelope.data.lines == ()


async def test_a_viewer_is_refused_before_the_batch(batched: Batched) -> None:
    one_batch = batched.driver(max_spends=1)
    root = await one_batch.root(generative_credits=100)

    response = await one_batch.spend(root, role=Role.VIEWER)

    assert response.status_code == 403
    assert await one_batch.balance(root) == 100
