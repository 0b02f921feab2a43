"""What a key's monthly credit limit costs a spend: spends per second made with an API key
(its row locked, its budget's month counted, then the balance), next to the same spends
made by a person (the balance alone) in the same run.

Everything runs in one throwaway sandbox (its own PostgreSQL and Kafka), through the
spend endpoint's handlers (`bench.billing_spend.through_handlers`: Idempotency-Key,
the spend in a batch, ledger, outbox, remembered receipt; the relay off), from
concurrent writers:

* spread over 1,000 workspaces, each with two keys: by a person (baseline), with its
  key without a limit, with its key with a monthly limit;
* all on one hot workspace: by a person, then with its one key with a limit (every
  spend then waits for the key's row, as it waits for the balance's row without one).

Afterwards every balance still equals its ledger, and each key's spent this month
equals the credits of the spends made with it.

Run: `.venv/bin/python -m bench.key_budget_spend`; `--quick` measures for 3 s instead of 10.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import uuid
from collections.abc import Callable

import asyncpg

from bench.billing_spend import (
    OPENING_CREDITS,
    WORKSPACES,
    WRITERS,
    Rate,
    a_creator,
    bench_settings,
    flat_out,
    open_workspaces,
    through_handlers,
)
from contracts.envelope import RawEnvelope, new_envelope
from contracts.events.apikeys import ApiKeyCreated
from infra.sandbox import sandbox
from services.billing.app import create_app
from shared.db import plain_url
from shared.principal import Principal
from shared.service import ServiceRuntime
from shared.settings import Settings

KEY_LIMIT = OPENING_CREDITS
"""A limit no run reaches: the cost of checking and counting it, not of refusing."""


async def create_keys(
    runtime: ServiceRuntime, workspaces: list[uuid.UUID], *, limited: bool
) -> dict[uuid.UUID, uuid.UUID]:
    """One key per workspace, as apikeys' `apikey.created` announces it: workspace → key."""
    keys = {workspace_id: uuid.uuid4() for workspace_id in workspaces}

    async def announce(workspace_id: uuid.UUID) -> None:
        envelope = new_envelope(
            ApiKeyCreated(
                key_id=keys[workspace_id],
                workspace_id=workspace_id,
                root_id=workspace_id,
                hash=uuid.uuid4().hex * 2,
                prefix="atr_Bench",
                last4="0000",
                name="Bench",
                expires_at=None,
                rate_limit=None,
                monthly_credit_limit=KEY_LIMIT if limited else None,
                suspended=False,
                rotated_from=None,
            ),
            producer="apikeys",
            root_id=workspace_id,
            workspace_id=workspace_id,
            actor="system",
            correlation_id=None,
        )
        await runtime.consumer.consume(RawEnvelope.model_validate_json(envelope.model_dump_json()))

    for start in range(0, len(workspaces), WRITERS):
        await asyncio.gather(*(announce(w) for w in workspaces[start : start + WRITERS]))
    return keys


def spending_with(keys: dict[uuid.UUID, uuid.UUID]) -> Callable[[uuid.UUID], Principal]:
    """The principal the gateway forwards for a request made with the workspace's key."""

    def caller_in(workspace_id: uuid.UUID) -> Principal:
        return Principal(api_key_id=keys[workspace_id], workspace_id=workspace_id)

    return caller_in


def any_of(workspaces: list[uuid.UUID]) -> Callable[[], uuid.UUID]:
    return lambda: random.choice(workspaces)


async def measure(settings: Settings, seconds: float) -> dict[str, Rate]:
    app = create_app(
        bench_settings(settings.model_copy(update={"default_plan_api_credits": OPENING_CREDITS}))
    )
    runtime: ServiceRuntime = app.state.runtime
    rates: dict[str, Rate] = {}
    async with contextlib.AsyncExitStack() as running:
        running.push_async_callback(runtime.stop)
        workspaces = await open_workspaces(runtime, WORKSPACES)
        limited = await create_keys(runtime, workspaces, limited=True)
        unlimited = await create_keys(runtime, workspaces, limited=False)
        hot = workspaces[0]

        plans: list[tuple[str, Callable[[], uuid.UUID], Callable[[uuid.UUID], Principal]]] = [
            ("1,000 workspaces: by a person", any_of(workspaces), a_creator),
            (
                "1,000 workspaces: key without a limit",
                any_of(workspaces),
                spending_with(unlimited),
            ),
            (
                "1,000 workspaces: key with a limit",
                any_of(workspaces),
                spending_with(limited),
            ),
            ("one hot workspace: by a person", lambda: hot, a_creator),
            ("one hot workspace: key with a limit", lambda: hot, spending_with(limited)),
        ]
        await flat_out(through_handlers(app, any_of(workspaces), spending_with(limited)), 1)
        for name, pick, caller_in in plans:
            rates[name] = await flat_out(through_handlers(app, pick, caller_in), seconds)
        await check_books(settings, workspaces)
    return rates


async def check_books(settings: Settings, workspaces: list[uuid.UUID]) -> None:
    """Every balance equals its ledger; every key's spent this month equals the credits
    of the spends made with it."""
    connection = await asyncpg.connect(plain_url(settings.database_url), ssl=False)
    try:
        drift = await connection.fetchval(
            "SELECT count(*) FROM billing.balances AS b WHERE b.workspace_id = ANY($1::uuid[])"
            " AND b.balance <> (SELECT coalesce(sum(amount), 0) FROM billing.ledger_lines AS l"
            " WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool)",
            workspaces,
        )
        miscounted = await connection.fetchval(
            "SELECT count(*) FROM billing.api_keys AS k"
            " LEFT JOIN billing.api_key_spending AS s ON s.budget_id = k.budget_id"
            " WHERE k.workspace_id = ANY($1::uuid[]) AND coalesce(s.spent, 0) <>"
            " (SELECT coalesce(sum(amount), 0) FROM billing.transactions AS t"
            "  WHERE t.api_key_id = k.key_id)",
            workspaces,
        )
    finally:
        await connection.close()
    if drift or miscounted:
        msg = f"books do not add up: {drift} balances drifted, {miscounted} keys miscounted"
        raise RuntimeError(msg)


def report(rates: dict[str, Rate], seconds: float) -> None:
    print()
    print(f"{'spends through the use case':<44}{'ops':>10}{'ops/s':>10}{'/person':>10}")
    for name, rate in rates.items():
        baseline = rates[name.split(":")[0] + ": by a person"]
        print(
            f"{name:<44}{rate.operations:>10}{rate.per_second:>10.0f}"
            f"{rate.per_second / baseline.per_second:>10.2f}"
        )
    print()
    print(
        f"{WRITERS} concurrent writers, {seconds:.0f} s each; machine: {os.cpu_count()} CPUs "
        "shared by PostgreSQL, Kafka and billing; fsync off in the sandbox"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    arguments = parser.parse_args()
    seconds = 3 if arguments.quick else 10
    logging.basicConfig(level=logging.WARNING)
    with sandbox("atrium-bench") as running:
        rates = asyncio.run(measure(running.settings, seconds))
    report(rates, seconds)


if __name__ == "__main__":
    main()
