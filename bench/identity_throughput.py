"""How many invitations and sub-workspace creations identity commits per second.

Runs identity's use cases directly (no HTTP) against a throwaway PostgreSQL and
Kafka, with the outbox relay publishing as in production, from concurrent writers:

* across many accounts (each writer works in its own account: no shared seat pool),
* in one hot account (every writer shares one seat pool, whose row lock serialises
  them: that is the price of never letting two requests take the last seat),

next to the baseline of the same engine committing one-row INSERT transactions from
the same number of writers, measured in the same run.

Run: `.venv/bin/python -m bench.identity_throughput` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from bench import results as saved_results
from contracts.events.billing import LimitsChanged
from contracts.events.identity import BillingMode
from contracts.permissions import Role
from infra.sandbox import sandbox
from services.identity import invitations, workspaces
from services.identity.app import create_app
from services.identity.commands import CreateRootWorkspace, CreateSubWorkspace, InviteMember
from services.identity.settings import IdentitySettings
from shared.principal import Principal
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.testing import as_delivered

WRITERS = 16


def founder(number: int) -> Principal:
    return Principal(user_id=f"founder-{number}", email=f"founder{number}@example.com")


def acting_in(principal: Principal, workspace_id: uuid.UUID) -> Principal:
    return Principal(
        user_id=principal.user_id,
        email=principal.email,
        email_verified=True,
        workspace_id=workspace_id,
    )


async def run_writers(total: int, write: Callable[[int, int], Awaitable[object]]) -> float:
    """`total` writes split across WRITERS concurrent writers; returns writes/s."""
    per_writer = total // WRITERS
    started = time.perf_counter()
    await asyncio.gather(*(_sequential(writer, per_writer, write) for writer in range(WRITERS)))
    return per_writer * WRITERS / (time.perf_counter() - started)


async def _sequential(
    writer: int, count: int, write: Callable[[int, int], Awaitable[object]]
) -> None:
    for n in range(count):
        await write(writer, n)


async def raise_seat_limit(identity: ServiceRuntime, root_id: uuid.UUID, limit: int) -> None:
    await identity.consumer.consume(
        as_delivered(
            LimitsChanged(
                workspace_id=root_id,
                root_id=root_id,
                billing_root_id=root_id,
                seats_limit=limit,
                seats_cap=None,
                avatar_slots_limit=3,
            ),
            producer="billing",
            root_id=root_id,
            workspace_id=root_id,
        )
    )


async def measure(settings: Settings, total: int) -> dict[str, float]:
    identity_settings = IdentitySettings(**settings.model_dump())
    policy = identity_settings.policy
    app = create_app(identity_settings)
    identity: ServiceRuntime = app.state.runtime
    units = identity.units_of_work
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        database = identity.database
        async with database.transaction() as session:
            await session.execute(
                text("CREATE TABLE IF NOT EXISTS bench_rows (id uuid primary key, n int)")
            )

        async def insert_row(_: int, n: int) -> None:
            async with database.transaction() as session:
                await session.execute(
                    text("INSERT INTO bench_rows VALUES (:id, :n)"), {"id": uuid.uuid4(), "n": n}
                )

        results["baseline: one-row INSERT transactions"] = await run_writers(total, insert_row)

        roots = []
        for writer in range(WRITERS):
            command = CreateRootWorkspace(caller=founder(writer), name=f"Account {writer}")
            async with units.begin(actor=command.caller.actor) as uow:
                created = await workspaces.create_root_workspace(uow, command)
            await raise_seat_limit(identity, created.id, 1_000_000)
            roots.append(created.id)
        hot_root = roots[0]

        async def create_sub_workspace(caller: Principal, parent_id: uuid.UUID, name: str) -> None:
            command = CreateSubWorkspace(
                caller=acting_in(caller, parent_id),
                parent_id=parent_id,
                name=name,
                billing_mode=BillingMode.PARENT,
                api_access=False,
            )
            async with units.begin(actor=caller.actor) as uow:
                await workspaces.create_sub_workspace(uow, command, policy)

        async def invite(
            caller: Principal, workspace_id: uuid.UUID, email: str, role: Role
        ) -> None:
            command = InviteMember(
                caller=acting_in(caller, workspace_id),
                workspace_id=workspace_id,
                email=email,
                role=role,
            )
            async with units.begin(actor=caller.actor) as uow:
                await invitations.invite_member(uow, command, policy)

        async def sub_workspace_in_own_account(writer: int, n: int) -> None:
            await create_sub_workspace(founder(writer), roots[writer], f"Client {n}")

        async def sub_workspace_in_hot_account(writer: int, n: int) -> None:
            await create_sub_workspace(founder(0), hot_root, f"Hot {writer}-{n}")

        async def invitation_in_own_account(writer: int, n: int) -> None:
            await invite(
                founder(writer), roots[writer], f"guest-{writer}-{n}@example.com", Role.CREATOR
            )

        async def invitation_in_hot_account(writer: int, n: int) -> None:
            await invite(founder(0), hot_root, f"hot-{writer}-{n}@example.com", Role.VIEWER)

        results["sub-workspace creations, many accounts"] = await run_writers(
            total, sub_workspace_in_own_account
        )
        results["sub-workspace creations, one account"] = await run_writers(
            total, sub_workspace_in_hot_account
        )
        results["invitations, many accounts"] = await run_writers(total, invitation_in_own_account)
        results["invitations, one account"] = await run_writers(total, invitation_in_hot_account)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the writes")
    args = parser.parse_args()
    total = 160 if args.quick else 1600
    with sandbox("atrium-bench") as environment:
        results = asyncio.run(measure(environment.settings, total))
    baseline = results["baseline: one-row INSERT transactions"]
    print(f"\n{'operation':<42} {'per second':>11} {'vs baseline':>12}")
    for name, rate in results.items():
        print(f"{name:<42} {rate:>11.0f} {rate / baseline:>12.2f}")
    print(
        f"\n{total} writes each, {WRITERS} concurrent writers; {os.cpu_count()} CPUs; "
        "relay publishing in the same process"
    )
    saved_results.save(
        "identity_throughput",
        {
            "writes": total,
            "writers": WRITERS,
            "per_second": {name: round(rate, 1) for name, rate in results.items()},
            "vs_baseline": {name: round(rate / baseline, 3) for name, rate in results.items()},
        },
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
