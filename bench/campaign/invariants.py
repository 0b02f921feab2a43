"""After a fault campaign: wait until its accounts are quiet (`settle`), then check that
every guarantee held for them (`violations`).

Both read every service's schema with the superuser URL, as an operator would, and
look only at the accounts (root ids) the campaign made: the database may be shared
with others that leave things half-done on purpose. `violations` reads in one
REPEATABLE READ transaction, so that every check sees the same moment of every
schema.

The checks, by the name a `Violation` carries:

* the ledger: `ledger-balanced` (a transaction's lines sum to zero per pool),
  `balance-is-sum-of-lines`, `balance-not-negative`, `balance-is-last-line`,
  `closed-account-empty`;
* spending: `charged-as-priced` (a spend or an avatar fee paid what it was priced),
  `key-budget-counts-spends` (billing's monthly spending of a key),
  `key-usage-counts-credits` (apikeys' count of the credits spent with a key);
* seats: `seats-within-limit` (billing's limit and identity's copy of it),
  `seats-within-cap`, `seat-count-kept` (identity's `seated` and `held` against a
  recount), `seat-limit-copied`, `seat-cap-copied`, `seat-usage-copied` (what each
  service keeps of the other's word);
* avatars: `avatar-slots-in-use` (billing's slots in use against the active
  avatars), `avatar-claims` (billing's unreleased claims against the same avatars);
* events: `outbox-published`, `event-consumed` (every consumer of an event's type
  has it in its inbox, applied), `event-parked`;
* copies of the services of record: `copy-of-workspaces` (the tree as billing,
  assets, apikeys and the gateway keep it), `copy-of-memberships` (the gateway's),
  `copy-of-keys` (the gateway's and billing's);
* what the workload saw acknowledged (`bench.campaign.acks`): `acknowledged-*`, and
  `spend-applied-once` (one transaction per Idempotency-Key);
* and a few more: `member-of-deleted-workspace`, `asset-in-deleted-workspace`,
  `key-of-deleted-workspace-usable`, `key-over-monthly-limit`, `root-without-super-admin`.

Which service consumes which event type is `reading.CONSUMERS`, from each service's
`consumers.py` (an event type a service has no handler for is not recorded in its
inbox); tests/unit/test_campaign_consumers.py keeps the two in step.

The checks live in `ledger`, `capacity`, `propagation` and `acknowledged`; `reading`
holds what they share.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench.campaign.acknowledged import check_acknowledged
from bench.campaign.acks import Acknowledged
from bench.campaign.capacity import check_avatars, check_seats
from bench.campaign.ledger import check_ledger, check_spending
from bench.campaign.propagation import check_copies, check_events, check_leftovers
from bench.campaign.reading import OUTBOXES, Scope, Violation, rows, unconsumed
from shared.db import asyncpg_url, tls_arguments

__all__ = ["Violation", "settle", "violations"]

POLL_SECONDS = 0.2
QUIET_SECONDS = 1.0
"""How long the accounts stay quiet before `settle` believes it: longer than a gateway
process keeps the requests made with keys before it writes them out as usage events
(`usage_flush_seconds`, at most a second)."""

CHECKS = (
    check_ledger,
    check_spending,
    check_seats,
    check_avatars,
    check_events,
    check_copies,
    check_leftovers,
)
"""Every check of the state the services keep, each reading in the one transaction."""


async def settle(
    database_url: str,
    root_ids: Collection[str],
    *,
    timeout: float,  # noqa: ASYNC109 - the campaign runner's interface: its budget
) -> None:
    """Wait until the accounts are quiet: every outbox row keyed by one of them
    published and consumed by each service that consumes its type, no avatar pending,
    no deletion unfinished; TimeoutError saying what still moves.

    Quiet means quiet for `QUIET_SECONDS` on end: once nothing moves, `settle` waits
    that long whatever is left of `timeout`. An event held in a consumer's parked events
    behind one parked for an operator does not move by itself: it does not hold
    `settle` up (`violations` reports it)."""
    deadline = time.monotonic() + timeout
    engine = create_async_engine(
        asyncpg_url(database_url), connect_args=tls_arguments(database_url)
    )
    quiet_since: float | None = None
    try:
        while True:
            async with engine.connect() as connection:
                moving = await _still_moving(connection, Scope.of(root_ids))
            now = time.monotonic()
            if moving:
                quiet_since = None
                if now > deadline:
                    msg = f"not settled after {timeout}s: " + "; ".join(moving)
                    raise TimeoutError(msg)
            else:
                quiet_since = now if quiet_since is None else quiet_since
                if now - quiet_since >= QUIET_SECONDS:
                    return
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await engine.dispose()


async def violations(
    database_url: str, root_ids: Collection[str], acknowledged: Sequence[Acknowledged]
) -> list[Violation]:
    """Every guarantee that does not hold for these accounts (none: an empty list)."""
    engine = create_async_engine(
        asyncpg_url(database_url), connect_args=tls_arguments(database_url)
    )
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="REPEATABLE READ")
            await connection.execute(text("SET TRANSACTION READ ONLY"))
            scope = Scope.of(root_ids)
            found: list[Violation] = []
            for check in CHECKS:
                found.extend(await check(connection, scope))
            found.extend(await check_acknowledged(connection, scope, acknowledged))
            return found
    finally:
        await engine.dispose()


async def _still_moving(connection: AsyncConnection, scope: Scope) -> list[str]:
    moving = [
        f"{count} events of {producer} unpublished"
        for producer, count in await rows(
            connection,
            f"SELECT producer, count(*) FROM ({OUTBOXES}) AS o"
            " WHERE published_at IS NULL GROUP BY producer ORDER BY producer",
            scope,
        )
    ]
    not_applied: dict[tuple[str, str], int] = defaultdict(int)
    for row in await unconsumed(connection, scope, waiting_for_an_operator=False):
        not_applied[row.producer, row.consumer] += 1
    moving.extend(
        f"{count} events of {producer} not yet applied by {consumer}"
        for (producer, consumer), count in sorted(not_applied.items())
    )
    unfinished_assets = await rows(
        connection,
        "SELECT status, count(*) FROM assets.assets"
        " WHERE root_id = ANY(:roots) AND status <> 'active' GROUP BY status",
        scope,
    )
    moving.extend(f"{count} avatars {status}" for status, count in unfinished_assets)
    deleting = await rows(
        connection,
        "SELECT id FROM identity.workspaces WHERE root_id = ANY(:roots) AND status = 'deleting'",
        scope,
    )
    if deleting:
        moving.append("workspaces being deleted: " + ", ".join(str(row.id) for row in deleting))
    return moving
