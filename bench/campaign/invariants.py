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

Which service consumes which event type is `CONSUMERS`, from each service's
`consumers.py` (an event type a service has no handler for is not recorded in its
inbox); tests/unit/test_campaign_consumers.py keeps the two in step.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from bench.campaign.acks import Acknowledged, Write
from contracts.envelope import EventPayload
from contracts.events.apikeys import ApiKeyCreated, ApiKeyRestored, ApiKeyRevoked, ApiKeySuspended
from contracts.events.billing import LimitsChanged, TransactionPosted
from contracts.events.gateway import ApiRequestsRecorded
from contracts.events.identity import (
    MemberJoined,
    MemberRemoved,
    MemberRoleChanged,
    SeatsCapChanged,
    SeatsUsageChanged,
    WorkspaceCreated,
    WorkspaceDeleted,
    WorkspaceDeletionStarted,
    WorkspaceSettingsChanged,
)
from services.identity.repository.seat_pools import SeatPoolRepository
from shared.db import asyncpg_url, tls_arguments

SERVICES = ("identity", "billing", "assets", "apikeys", "gateway")
"""Every service's schema: each has an outbox."""

_WORKSPACE_EVENTS = (WorkspaceCreated, WorkspaceSettingsChanged, WorkspaceDeleted)
_KEY_EVENTS = (ApiKeyCreated, ApiKeyRevoked, ApiKeySuspended, ApiKeyRestored)

CONSUMERS: Mapping[str, frozenset[type[EventPayload]]] = {
    "identity": frozenset({LimitsChanged}),
    "billing": frozenset(
        {*_WORKSPACE_EVENTS, SeatsUsageChanged, SeatsCapChanged, *_KEY_EVENTS},
    ),
    "assets": frozenset({WorkspaceCreated, WorkspaceDeleted}),
    "apikeys": frozenset(
        {*_WORKSPACE_EVENTS, WorkspaceDeletionStarted, ApiRequestsRecorded, TransactionPosted},
    ),
    "gateway": frozenset(
        {
            *_WORKSPACE_EVENTS,
            WorkspaceDeletionStarted,
            MemberJoined,
            MemberRoleChanged,
            MemberRemoved,
            *_KEY_EVENTS,
        },
    ),
}
"""The event types each service handles, and so records in its inbox."""

POLL_SECONDS = 0.2
QUIET_SECONDS = 1.0
"""How long the accounts stay quiet before `settle` believes it: longer than a gateway
process keeps the requests made with keys before it writes them out as usage events
(`usage_flush_seconds`, at most a second)."""


@dataclass(frozen=True)
class Violation:
    invariant: str
    """A short stable name, e.g. "balance-is-sum-of-lines"."""
    detail: str
    """What was found, with ids."""


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
                moving = await _still_moving(connection, _Scope.of(root_ids))
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
            scope = _Scope.of(root_ids)
            found: list[Violation] = []
            for check in _CHECKS:
                found.extend(await check(connection, scope))
            found.extend(await _acknowledged_writes(connection, scope, acknowledged))
            return found
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class _Scope:
    """The accounts looked at, as the parameters every query takes."""

    roots: list[uuid.UUID]

    @classmethod
    def of(cls, root_ids: Collection[str]) -> _Scope:
        return cls(sorted(uuid.UUID(str(root_id)) for root_id in root_ids))

    @property
    def params(self) -> dict[str, Any]:
        return {"roots": self.roots, "keys": [str(root) for root in self.roots]}


async def _rows(
    connection: AsyncConnection, sql: str, scope: _Scope, **params: Any
) -> Sequence[Any]:
    return (await connection.execute(text(sql), scope.params | params)).all()


# Settling -----------------------------------------------------------------------------


async def _still_moving(connection: AsyncConnection, scope: _Scope) -> list[str]:
    moving = [
        f"{count} events of {producer} unpublished"
        for producer, count in await _rows(
            connection,
            f"SELECT producer, count(*) FROM ({_OUTBOXES}) AS o"
            " WHERE published_at IS NULL GROUP BY producer ORDER BY producer",
            scope,
        )
    ]
    unconsumed: dict[tuple[str, str], int] = defaultdict(int)
    for row in await _unconsumed(connection, scope, waiting_for_an_operator=False):
        unconsumed[row.producer, row.consumer] += 1
    moving.extend(
        f"{count} events of {producer} not yet applied by {consumer}"
        for (producer, consumer), count in sorted(unconsumed.items())
    )
    unfinished_assets = await _rows(
        connection,
        "SELECT status, count(*) FROM assets.assets"
        " WHERE root_id = ANY(:roots) AND status <> 'active' GROUP BY status",
        scope,
    )
    moving.extend(f"{count} avatars {status}" for status, count in unfinished_assets)
    deleting = await _rows(
        connection,
        "SELECT id FROM identity.workspaces WHERE root_id = ANY(:roots) AND status = 'deleting'",
        scope,
    )
    if deleting:
        moving.append("workspaces being deleted: " + ", ".join(str(row.id) for row in deleting))
    return moving


_OUTBOXES = " UNION ALL ".join(
    f"SELECT '{producer}' AS producer, id, event_id, event_type, published_at"
    f" FROM {producer}.outbox WHERE message_key = ANY(:keys)"
    for producer in SERVICES
)
"""Every outbox row of these accounts, with the service that wrote it."""


async def _unconsumed(
    connection: AsyncConnection, scope: _Scope, *, waiting_for_an_operator: bool
) -> Sequence[Any]:
    """The events of these accounts that a service handles and has not applied: rows of
    (consumer, producer, event_id, event_type, outcome). Those held behind an event
    parked for an operator are left out unless `waiting_for_an_operator`: they wait for
    someone, not for time."""
    queries = []
    for consumer, payloads in CONSUMERS.items():
        types = ", ".join(f"'{payload.event_type}'" for payload in sorted(payloads, key=str))
        held_up = (
            ""
            if waiting_for_an_operator
            else f""" AND NOT EXISTS (
                SELECT 1 FROM {consumer}.parked_events AS held
                JOIN {consumer}.parked_events AS head
                  ON head.message_key = held.message_key AND head.topic = held.topic
                 AND head.state = 'parked'
                WHERE held.event_id = o.event_id)"""
        )
        queries.append(
            f"SELECT '{consumer}' AS consumer, o.producer, o.id, o.event_id, o.event_type,"
            f" i.outcome FROM ({_OUTBOXES}) AS o"
            f" LEFT JOIN {consumer}.inbox AS i ON i.event_id = o.event_id"
            f" WHERE o.event_type IN ({types})"
            f" AND (i.event_id IS NULL OR i.outcome <> 'applied'){held_up}"
        )
    return await _rows(
        connection, " UNION ALL ".join(queries) + " ORDER BY consumer, producer, id", scope
    )


# The ledger ---------------------------------------------------------------------------


async def _ledger(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    found: list[Violation] = []
    unbalanced = await _rows(
        connection,
        """SELECT l.transaction_id, l.pool, sum(l.amount) AS total
           FROM billing.ledger_lines AS l JOIN billing.transactions AS t
             ON t.id = l.transaction_id
           WHERE t.root_id = ANY(:roots)
           GROUP BY l.transaction_id, l.pool HAVING sum(l.amount) <> 0""",
        scope,
    )
    found.extend(
        Violation(
            "ledger-balanced",
            f"transaction {row.transaction_id}: its {row.pool} lines sum to {row.total}",
        )
        for row in unbalanced
    )
    unkeyed = await _rows(
        connection,
        """SELECT t.id, t.workspace_id, count(k.key) AS answers
           FROM billing.transactions AS t
           LEFT JOIN billing.idempotency_keys AS k
             ON k.response ->> 'transaction_id' = t.id::text
           WHERE t.root_id = ANY(:roots) AND t.kind = 'spend'
           GROUP BY t.id, t.workspace_id HAVING count(k.key) <> 1""",
        scope,
    )
    found.extend(
        Violation(
            "spend-applied-once",
            f"spend {row.id} of {row.workspace_id} is the answer of {row.answers} "
            "Idempotency-Keys, not one",
        )
        for row in unkeyed
    )
    balances = await _rows(
        connection,
        """SELECT b.workspace_id, b.pool, b.balance, a.closed_at IS NOT NULL AS closed,
                  coalesce(sums.total, 0) AS total, last.balance_after AS last_after
           FROM billing.balances AS b
           JOIN billing.accounts AS a ON a.workspace_id = b.workspace_id
           LEFT JOIN LATERAL (
               SELECT sum(l.amount) AS total FROM billing.ledger_lines AS l
               WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool) AS sums ON true
           LEFT JOIN LATERAL (
               SELECT l.balance_after FROM billing.ledger_lines AS l
               WHERE l.workspace_id = b.workspace_id AND l.pool = b.pool
               ORDER BY l.id DESC LIMIT 1) AS last ON true
           WHERE a.root_id = ANY(:roots)
           ORDER BY b.workspace_id, b.pool""",
        scope,
    )
    for row in balances:
        where = f"workspace {row.workspace_id}, {row.pool}"
        if row.balance != row.total:
            found.append(
                Violation(
                    "balance-is-sum-of-lines",
                    f"{where}: balance {row.balance}, its ledger lines sum to {row.total}",
                )
            )
        if row.balance < 0:
            found.append(Violation("balance-not-negative", f"{where}: balance {row.balance}"))
        if row.last_after is not None and row.balance != row.last_after:
            found.append(
                Violation(
                    "balance-is-last-line",
                    f"{where}: balance {row.balance}, its last line left {row.last_after}",
                )
            )
        if row.closed and row.balance != 0:
            found.append(
                Violation(
                    "closed-account-empty",
                    f"{where}: the workspace is deleted and still holds {row.balance}",
                )
            )
    return found


async def _spending(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    """A spend or an avatar fee pays the world what it was priced; a key's monthly
    budget and apikeys' usage count what was spent with it."""
    found: list[Violation] = []
    mispriced = await _rows(
        connection,
        """SELECT t.id, t.kind, t.amount, coalesce(sum(l.amount), 0) AS paid
           FROM billing.transactions AS t
           LEFT JOIN billing.ledger_lines AS l
             ON l.transaction_id = t.id AND l.workspace_id IS NULL AND l.pool = t.pool
           WHERE t.root_id = ANY(:roots) AND t.kind IN ('spend', 'avatar_claim')
           GROUP BY t.id, t.kind, t.amount HAVING coalesce(sum(l.amount), 0) <> t.amount
           ORDER BY t.id""",
        scope,
    )
    found.extend(
        Violation(
            "charged-as-priced",
            f"{row.kind} {row.id} was priced {row.amount} and paid {row.paid}",
        )
        for row in mispriced
    )
    budgets = await _rows(
        connection,
        """WITH keys AS (
               SELECT key_id, budget_id FROM billing.api_keys WHERE root_id = ANY(:roots)),
           spent AS (
               SELECT k.budget_id,
                      date_trunc('month', timezone('UTC', t.created_at))::date AS month,
                      sum(t.amount) AS total
               FROM billing.transactions AS t JOIN keys AS k ON k.key_id = t.api_key_id
               WHERE t.kind IN ('spend', 'avatar_claim') AND t.amount > 0
               GROUP BY 1, 2)
           SELECT coalesce(s.budget_id, b.budget_id) AS budget_id,
                  coalesce(s.month, b.month) AS month,
                  coalesce(b.spent, 0) AS counted, coalesce(s.total, 0) AS total
           FROM spent AS s
           FULL JOIN (SELECT * FROM billing.api_key_spending
                      WHERE budget_id IN (SELECT budget_id FROM keys)) AS b
             ON b.budget_id = s.budget_id AND b.month = s.month
           WHERE coalesce(b.spent, 0) <> coalesce(s.total, 0)""",
        scope,
    )
    found.extend(
        Violation(
            "key-budget-counts-spends",
            f"key budget {row.budget_id} counted {row.counted} spent in {row.month}, "
            f"its spends total {row.total}",
        )
        for row in budgets
    )
    usage = await _rows(
        connection,
        """WITH paid AS (
               SELECT t.api_key_id, sum(l.amount) AS total
               FROM billing.transactions AS t
               JOIN billing.ledger_lines AS l ON l.transaction_id = t.id
               WHERE t.root_id = ANY(:roots) AND t.api_key_id IS NOT NULL
                 AND l.workspace_id IS NULL AND l.pool = 'api_credits' AND l.amount > 0
               GROUP BY t.api_key_id),
           counted AS (
               SELECT u.key_id, sum(u.credits_spent) AS total
               FROM apikeys.key_usage_days AS u
               JOIN apikeys.api_keys AS k ON k.id = u.key_id
               WHERE k.root_id = ANY(:roots)
               GROUP BY u.key_id)
           SELECT coalesce(p.api_key_id, c.key_id) AS key_id,
                  coalesce(p.total, 0) AS paid, coalesce(c.total, 0) AS counted
           FROM paid AS p FULL JOIN counted AS c ON c.key_id = p.api_key_id
           WHERE coalesce(p.total, 0) <> coalesce(c.total, 0)""",
        scope,
    )
    found.extend(
        Violation(
            "key-usage-counts-credits",
            f"key {row.key_id} paid {row.paid} API credits, apikeys counted {row.counted}",
        )
        for row in usage
    )
    return found


# Seats --------------------------------------------------------------------------------


async def _seats(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    found: list[Violation] = []
    pools = await _rows(
        connection,
        """SELECT p.billing_root_id, p.seats_limit, p.used, p.pending,
                  b.balance AS billing_limit, a.seats_used, a.seats_pending
           FROM identity.seat_pools AS p
           JOIN identity.workspaces AS w ON w.id = p.billing_root_id
           LEFT JOIN billing.balances AS b
             ON b.workspace_id = p.billing_root_id AND b.pool = 'seats'
           LEFT JOIN billing.accounts AS a ON a.workspace_id = p.billing_root_id
           WHERE p.root_id = ANY(:roots) AND w.status = 'active' AND w.billing_mode = 'own'
           ORDER BY p.billing_root_id""",
        scope,
    )
    repository = SeatPoolRepository(AsyncSession(bind=connection))
    now = await _now(connection)
    for pool in pools:
        where = f"seat pool {pool.billing_root_id}"
        kept, counted = await repository.recount(pool.billing_root_id)
        if kept != counted:
            found.append(
                Violation(
                    "seat-count-kept",
                    f"{where}: kept {kept.used} seated and {kept.pending} held, "
                    f"rows say {counted.used} and {counted.pending}",
                )
            )
        record = await repository.get(pool.billing_root_id, now=now)
        assert record is not None
        limit = pool.billing_limit
        if pool.seats_limit != limit:
            found.append(
                Violation(
                    "seat-limit-copied",
                    f"{where}: identity's limit {pool.seats_limit}, billing's {limit}",
                )
            )
        limits = {"billing's": limit, "identity's": pool.seats_limit}
        found.extend(
            Violation(
                "seats-within-limit",
                f"{where}: {record.usage.used} seated and {record.usage.pending} held, "
                f"{whose} limit {value}",
            )
            for whose, value in limits.items()
            if value is not None and record.usage.taken > value
        )
        if (pool.seats_used, pool.seats_pending) != (pool.used, pool.pending):
            found.append(
                Violation(
                    "seat-usage-copied",
                    f"{where}: identity announced {pool.used} used and {pool.pending} "
                    f"pending, billing has {pool.seats_used} and {pool.seats_pending}",
                )
            )
    capped = await _rows(
        connection,
        """SELECT w.id, w.seats_cap, a.seats_cap AS billing_cap
           FROM identity.workspaces AS w
           LEFT JOIN billing.accounts AS a ON a.workspace_id = w.id
           WHERE w.root_id = ANY(:roots) AND w.status = 'active'
             AND (w.seats_cap IS NOT NULL OR a.seats_cap IS NOT NULL)
           ORDER BY w.id""",
        scope,
    )
    for workspace in capped:
        where = f"workspace {workspace.id}"
        if workspace.seats_cap != workspace.billing_cap:
            found.append(
                Violation(
                    "seat-cap-copied",
                    f"{where}: identity's cap {workspace.seats_cap}, billing's "
                    f"{workspace.billing_cap}",
                )
            )
        if workspace.seats_cap is not None:
            taken = await repository.in_workspace(workspace.id, now=now)
            if taken > workspace.seats_cap:
                found.append(
                    Violation(
                        "seats-within-cap",
                        f"{where}: {taken} members and pending invitations, cap "
                        f"{workspace.seats_cap}",
                    )
                )
    return found


async def _now(connection: AsyncConnection) -> datetime:
    """The moment the checks look at (their transaction's): invitations expire by it."""
    moment: datetime = (await connection.execute(text("SELECT now()"))).scalar_one()
    return moment


# Avatars ------------------------------------------------------------------------------


async def _avatars(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    found: list[Violation] = []
    slots = await _rows(
        connection,
        """SELECT a.workspace_id, b.in_use,
                  (SELECT count(*) FROM assets.assets AS x
                   WHERE x.workspace_id = a.workspace_id AND x.kind = 'avatar'
                     AND x.status = 'active') AS avatars
           FROM billing.accounts AS a
           JOIN billing.balances AS b
             ON b.workspace_id = a.workspace_id AND b.pool = 'avatar_slots'
           WHERE a.root_id = ANY(:roots) AND a.closed_at IS NULL
           ORDER BY a.workspace_id""",
        scope,
    )
    found.extend(
        Violation(
            "avatar-slots-in-use",
            f"workspace {row.workspace_id}: {row.in_use} avatar slots in use, "
            f"{row.avatars} avatars",
        )
        for row in slots
        if row.in_use != row.avatars
    )
    unmatched = await _rows(
        connection,
        """SELECT coalesce(c.avatar_id, x.id) AS avatar_id,
                  coalesce(c.workspace_id, x.workspace_id) AS workspace_id,
                  c.avatar_id IS NULL AS unclaimed
           FROM (SELECT c.* FROM billing.avatar_claims AS c
                 JOIN billing.accounts AS a ON a.workspace_id = c.workspace_id
                 WHERE a.root_id = ANY(:roots) AND a.closed_at IS NULL
                   AND c.release_transaction_id IS NULL) AS c
           FULL JOIN (SELECT x.* FROM assets.assets AS x
                      JOIN billing.accounts AS a ON a.workspace_id = x.workspace_id
                      WHERE x.root_id = ANY(:roots) AND x.kind = 'avatar'
                        AND x.status = 'active' AND a.closed_at IS NULL) AS x
             ON x.id = c.avatar_id AND x.workspace_id = c.workspace_id
           WHERE c.avatar_id IS NULL OR x.id IS NULL""",
        scope,
    )
    found.extend(
        Violation(
            "avatar-claims",
            f"avatar {row.avatar_id} of workspace {row.workspace_id}: "
            + ("active with no claim in billing" if row.unclaimed else "claimed but not active"),
        )
        for row in unmatched
    )
    return found


# Events -------------------------------------------------------------------------------


async def _events(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    unpublished = await _rows(
        connection,
        f"SELECT producer, event_id, event_type FROM ({_OUTBOXES}) AS o"
        " WHERE published_at IS NULL ORDER BY producer, id",
        scope,
    )
    found = [
        Violation("outbox-published", f"{row.producer}'s {row.event_type} {row.event_id}")
        for row in unpublished
    ]
    found.extend(
        Violation(
            "event-consumed",
            f"{row.producer}'s {row.event_type} {row.event_id}: "
            + (
                f"not in {row.consumer}'s inbox"
                if row.outcome is None
                else f"{row.outcome} by {row.consumer}"
            ),
        )
        for row in await _unconsumed(connection, scope, waiting_for_an_operator=True)
    )
    parked = await _rows(
        connection,
        " UNION ALL ".join(
            f"SELECT '{consumer}' AS consumer, position, event_id, event_type, state,"
            f" last_error FROM {consumer}.parked_events WHERE message_key = ANY(:keys)"
            for consumer in CONSUMERS
        )
        + " ORDER BY consumer, position",
        scope,
    )
    found.extend(
        Violation(
            "event-parked",
            f"{row.consumer} holds {row.event_type} {row.event_id} ({row.state}): "
            f"{row.last_error or 'behind an earlier event'}",
        )
        for row in parked
    )
    return found


# Copies of the services of record -----------------------------------------------------


@dataclass(frozen=True)
class _Copy:
    """A service's copy of rows that another service owns: `of_record` and `copy`
    each select a row's key and the compared columns, in the same order."""

    name: str
    what: str
    of_record: str
    copy: str
    key_columns: int = 1


_IDENTITY_TREE = """
    SELECT id, parent_id, root_id, {columns} FROM identity.workspaces
    WHERE root_id = ANY(:roots)"""

_COPIES = (
    _Copy(
        "copy-of-workspaces",
        "the gateway's workspace",
        _IDENTITY_TREE.format(columns="api_access, status"),
        """SELECT id, parent_id, root_id, api_access, status FROM gateway.workspaces
           WHERE root_id = ANY(:roots)""",
    ),
    _Copy(
        "copy-of-workspaces",
        "apikeys' workspace",
        _IDENTITY_TREE.format(columns="api_access, status"),
        """SELECT id, parent_id, root_id, api_access, status FROM apikeys.workspaces
           WHERE root_id = ANY(:roots)""",
    ),
    _Copy(
        "copy-of-workspaces",
        "assets' workspace",
        _IDENTITY_TREE.format(
            columns="CASE status WHEN 'deleted' THEN 'deleted' ELSE 'active' END"
        ),
        "SELECT id, parent_id, root_id, status FROM assets.workspaces WHERE root_id = ANY(:roots)",
    ),
    _Copy(
        "copy-of-workspaces",
        "billing's account",
        _IDENTITY_TREE.format(
            columns="billing_root_id, billing_mode, strict_quota, api_access, status = 'deleted'"
        ),
        """SELECT workspace_id, parent_id, root_id, billing_root_id, billing_mode,
                  strict_quota, api_access, closed_at IS NOT NULL
           FROM billing.accounts WHERE root_id = ANY(:roots)""",
    ),
    _Copy(
        "copy-of-memberships",
        "the gateway's membership",
        """SELECT m.workspace_id, m.user_id, m.role FROM identity.memberships AS m
           JOIN identity.workspaces AS w ON w.id = m.workspace_id
           WHERE w.root_id = ANY(:roots)""",
        """SELECT m.workspace_id, m.user_id, m.role FROM gateway.memberships AS m
           WHERE m.workspace_id IN (
               SELECT id FROM identity.workspaces WHERE root_id = ANY(:roots)
               UNION SELECT id FROM gateway.workspaces WHERE root_id = ANY(:roots))""",
        key_columns=2,
    ),
    _Copy(
        "copy-of-keys",
        "the gateway's key",
        """SELECT id, hash, workspace_id, root_id, suspended, revoked_at, expires_at,
                  rate_limit_requests, rate_limit_period_seconds
           FROM apikeys.api_keys WHERE root_id = ANY(:roots)""",
        """SELECT key_id, hash, workspace_id, root_id, suspended, revoked_at, expires_at,
                  rate_limit_requests, rate_limit_period_seconds
           FROM gateway.api_keys WHERE root_id = ANY(:roots)""",
    ),
    _Copy(
        "copy-of-keys",
        "billing's key",
        """SELECT id, workspace_id, root_id, suspended, revoked_at, expires_at,
                  monthly_credit_limit
           FROM apikeys.api_keys WHERE root_id = ANY(:roots)""",
        """SELECT key_id, workspace_id, root_id, suspended, revoked_at, expires_at,
                  monthly_credit_limit
           FROM billing.api_keys WHERE root_id = ANY(:roots)""",
    ),
)


async def _copies(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    found: list[Violation] = []
    for copy in _COPIES:
        of_record = _keyed(await _rows(connection, copy.of_record, scope), copy.key_columns)
        kept = _keyed(await _rows(connection, copy.copy, scope), copy.key_columns)
        for key in sorted(of_record.keys() | kept.keys(), key=str):
            if key not in kept:
                detail = f"{copy.what} {_name(key)} is missing"
            elif key not in of_record:
                detail = f"{copy.what} {_name(key)} is not in its service of record"
            elif kept[key] != of_record[key]:
                detail = (
                    f"{copy.what} {_name(key)} is {_name(kept[key])}, "
                    f"its service of record says {_name(of_record[key])}"
                )
            else:
                continue
            found.append(Violation(copy.name, detail))
    return found


def _keyed(rows: Iterable[Any], key_columns: int) -> dict[Any, tuple[Any, ...]]:
    keyed: dict[Any, tuple[Any, ...]] = {}
    for row in rows:
        values = tuple(row)
        key = values[:key_columns] if key_columns > 1 else values[0]
        keyed[key] = values[key_columns:]
    return keyed


def _name(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(str(part) for part in value) + ")"
    return str(value)


# Other cheap checks -------------------------------------------------------------------


async def _leftovers(connection: AsyncConnection, scope: _Scope) -> list[Violation]:
    found: list[Violation] = []
    members = await _rows(
        connection,
        """SELECT m.workspace_id, m.user_id FROM identity.memberships AS m
           JOIN identity.workspaces AS w ON w.id = m.workspace_id
           WHERE w.root_id = ANY(:roots) AND w.status = 'deleted'""",
        scope,
    )
    found.extend(
        Violation(
            "member-of-deleted-workspace",
            f"{row.user_id} is still a member of deleted workspace {row.workspace_id}",
        )
        for row in members
    )
    assets = await _rows(
        connection,
        """SELECT x.id, x.workspace_id FROM assets.assets AS x
           JOIN identity.workspaces AS w ON w.id = x.workspace_id
           WHERE x.root_id = ANY(:roots) AND w.status = 'deleted'
           UNION
           SELECT s.asset_id, s.target_workspace_id FROM assets.shares AS s
           JOIN identity.workspaces AS w ON w.id = s.target_workspace_id
           WHERE w.root_id = ANY(:roots) AND w.status = 'deleted'""",
        scope,
    )
    found.extend(
        Violation(
            "asset-in-deleted-workspace",
            f"asset {row.id} is still in (or shared with) deleted workspace {row.workspace_id}",
        )
        for row in assets
    )
    keys = await _rows(
        connection,
        """SELECT k.id, k.workspace_id FROM apikeys.api_keys AS k
           JOIN identity.workspaces AS w ON w.id = k.workspace_id
           WHERE k.root_id = ANY(:roots) AND w.status = 'deleted'
             AND (k.revoked_at IS NULL OR k.revoked_at > now())""",
        scope,
    )
    found.extend(
        Violation(
            "key-of-deleted-workspace-usable",
            f"key {row.id} of deleted workspace {row.workspace_id} is not revoked",
        )
        for row in keys
    )
    over = await _rows(
        connection,
        """SELECT s.budget_id, s.month, s.spent, k.monthly_credit_limit
           FROM billing.api_key_spending AS s
           JOIN billing.api_keys AS k ON k.key_id = s.budget_id
           WHERE k.root_id = ANY(:roots) AND s.spent > k.monthly_credit_limit""",
        scope,
    )
    found.extend(
        Violation(
            "key-over-monthly-limit",
            f"key {row.budget_id} spent {row.spent} in {row.month}, "
            f"limit {row.monthly_credit_limit}",
        )
        for row in over
    )
    headless = await _rows(
        connection,
        """SELECT w.id FROM identity.workspaces AS w
           WHERE w.id = ANY(:roots) AND w.status = 'active' AND NOT EXISTS (
               SELECT 1 FROM identity.memberships AS m
               WHERE m.workspace_id = w.id AND m.role = 'super_admin')""",
        scope,
    )
    found.extend(
        Violation("root-without-super-admin", f"account {row.id} has no Super Admin")
        for row in headless
    )
    return found


_CHECKS = (_ledger, _spending, _seats, _avatars, _events, _copies, _leftovers)


# Acknowledged writes ------------------------------------------------------------------


@dataclass(frozen=True)
class _Kept:
    """What the services of record keep of these accounts, for the acknowledged writes
    to be looked for in."""

    workspaces: Mapping[str, Any]
    accounts: Mapping[str, Any]
    invitations: Mapping[str, Any]
    members: frozenset[tuple[str, str]]
    transactions: Mapping[str, Any]
    purchase_lines: Mapping[str, Mapping[tuple[str, str], int]]
    keys: Mapping[str, Any]
    assets: Mapping[str, Any]
    shares: frozenset[tuple[str, str]]
    copies: Mapping[str, frozenset[str]]
    """The workspaces that assets, apikeys and the gateway know."""
    allocated: Mapping[str, Mapping[str, int | None]]
    """Per workspace, what its parent granted of each pool (`seats`: its cap)."""

    @classmethod
    async def read(cls, connection: AsyncConnection, scope: _Scope) -> _Kept:
        async def by_id(sql: str) -> dict[str, Any]:
            return {str(row[0]): row for row in await _rows(connection, sql, scope)}

        lines: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        for row in await _rows(
            connection,
            """SELECT l.transaction_id, l.workspace_id, l.pool, l.amount
               FROM billing.ledger_lines AS l
               JOIN billing.transactions AS t ON t.id = l.transaction_id
               WHERE t.root_id = ANY(:roots) AND t.kind = 'purchase'""",
            scope,
        ):
            lines[str(row.transaction_id)][str(row.workspace_id), row.pool] = row.amount
        copies = {
            schema: frozenset(
                str(row.id)
                for row in await _rows(
                    connection,
                    f"SELECT id FROM {schema}.workspaces WHERE root_id = ANY(:roots)",
                    scope,
                )
            )
            for schema in ("assets", "apikeys", "gateway")
        }
        return cls(
            workspaces=await by_id(
                "SELECT id, parent_id, billing_mode, status, path FROM identity.workspaces"
                " WHERE root_id = ANY(:roots)"
            ),
            accounts=await by_id(
                "SELECT workspace_id, closed_at FROM billing.accounts WHERE root_id = ANY(:roots)"
            ),
            invitations=await by_id(
                """SELECT i.id, i.workspace_id, i.email, i.role, i.status
                   FROM identity.invitations AS i
                   JOIN identity.workspaces AS w ON w.id = i.workspace_id
                   WHERE w.root_id = ANY(:roots)"""
            ),
            members=frozenset(
                (str(row.workspace_id), row.user_id)
                for row in await _rows(
                    connection,
                    """SELECT m.workspace_id, m.user_id FROM identity.memberships AS m
                       JOIN identity.workspaces AS w ON w.id = m.workspace_id
                       WHERE w.root_id = ANY(:roots)""",
                    scope,
                )
            ),
            transactions=await by_id(
                "SELECT id, kind, workspace_id, pool, amount, api_key_id FROM billing.transactions"
                " WHERE root_id = ANY(:roots)"
            ),
            purchase_lines=lines,
            keys=await by_id(
                "SELECT id, workspace_id, revoked_at FROM apikeys.api_keys"
                " WHERE root_id = ANY(:roots)"
            ),
            assets=await by_id(
                "SELECT id, workspace_id, kind, status FROM assets.assets"
                " WHERE root_id = ANY(:roots)"
            ),
            shares=frozenset(
                (str(row.asset_id), str(row.target_workspace_id))
                for row in await _rows(
                    connection,
                    """SELECT s.asset_id, s.target_workspace_id FROM assets.shares AS s
                       JOIN assets.assets AS x ON x.id = s.asset_id
                       WHERE x.root_id = ANY(:roots)""",
                    scope,
                )
            ),
            copies=copies,
            allocated=await cls._allocated(connection, scope),
        )

    @staticmethod
    async def _allocated(
        connection: AsyncConnection, scope: _Scope
    ) -> dict[str, dict[str, int | None]]:
        allocated: dict[str, dict[str, int | None]] = defaultdict(dict)
        for row in await _rows(
            connection,
            """SELECT a.workspace_id, b.pool, b.allocated, a.seats_cap
               FROM billing.accounts AS a JOIN billing.balances AS b
                 ON b.workspace_id = a.workspace_id
               WHERE a.root_id = ANY(:roots)""",
            scope,
        ):
            pools = allocated[str(row.workspace_id)]
            pools[row.pool] = row.seats_cap if row.pool == "seats" else row.allocated
        return allocated

    def deleted(self, workspace_id: str) -> bool:
        """Deleted or being deleted (a deletion marks the whole subtree at once)."""
        workspace = self.workspaces.get(workspace_id)
        return workspace is not None and workspace.status != "active"


class _Undone:
    """The later acknowledged writes that undo earlier ones: an acknowledged write is
    looked for unless one of these came after it."""

    def __init__(self, acknowledged: Sequence[Acknowledged]) -> None:
        self.last: dict[tuple[Write, str, str], int] = {}
        """The last sequence of a kind of write, in a workspace, of an id."""
        self.last_anywhere: dict[tuple[Write, str], int] = {}
        for ack in acknowledged:
            key = (ack.write, ack.workspace_id, self._id(ack))
            self.last[key] = max(self.last.get(key, -1), ack.sequence)
            anywhere = (ack.write, self._id(ack))
            self.last_anywhere[anywhere] = max(self.last_anywhere.get(anywhere, -1), ack.sequence)

    @staticmethod
    def _id(ack: Acknowledged) -> str:
        if ack.write is Write.ACCEPTANCE:
            return str(ack.detail.get("user_id"))
        if ack.write is Write.UNSHARE:
            return f"{ack.id}/{ack.detail.get('target')}"
        return str(ack.id)

    def after(self, write: Write, workspace_id: str, id_: str, sequence: int) -> bool:
        return self.last.get((write, workspace_id, id_), -1) > sequence

    def anywhere_after(self, write: Write, id_: str, sequence: int) -> bool:
        return self.last_anywhere.get((write, id_), -1) > sequence


async def _acknowledged_writes(
    connection: AsyncConnection, scope: _Scope, acknowledged: Sequence[Acknowledged]
) -> list[Violation]:
    kept = await _Kept.read(connection, scope)
    undone = _Undone(acknowledged)
    roots = {str(root) for root in scope.roots}
    found: list[Violation] = []
    for ack in sorted(acknowledged, key=lambda ack: ack.sequence):
        if ack.root_id not in roots:
            continue
        problem = _missing(ack, kept, undone)
        if problem is not None:
            found.append(Violation(f"acknowledged-{ack.write.value}", f"#{ack.sequence} {problem}"))
    found.extend(_spends_applied_once(acknowledged, kept))
    return found


def _missing(ack: Acknowledged, kept: _Kept, undone: _Undone) -> str | None:  # noqa: PLR0911, PLR0912 - one case per kind of write
    """What is wrong with an acknowledged write as its services keep it; None if nothing."""
    workspace_gone = kept.deleted(ack.workspace_id)
    match ack.write:
        case Write.ROOT_CREATED | Write.SUB_WORKSPACE_CREATED:
            return _workspace_missing(str(ack.id), ack, kept)
        case Write.WORKSPACE_DELETED:
            workspace = kept.workspaces.get(str(ack.id))
            if workspace is None or workspace.status != "deleted":
                state = "missing" if workspace is None else workspace.status
                return f"workspace {ack.id} was deleted (202) and is {state}"
        case Write.PURCHASE:
            return _purchase_missing(ack, kept)
        case Write.SPEND:
            spend = kept.transactions.get(str(ack.id))
            if spend is None:
                return f"spend {ack.id} of workspace {ack.workspace_id} has no transaction"
            answered = (
                ack.workspace_id,
                ack.detail.get("pool"),
                ack.detail.get("amount"),
                ack.detail.get("api_key_id"),
            )
            stored = (
                str(spend.workspace_id),
                spend.pool,
                spend.amount,
                None if spend.api_key_id is None else str(spend.api_key_id),
            )
            if spend.kind != "spend" or answered != stored:
                return (
                    f"spend {ack.id} was answered {answered}, the ledger has {spend.kind} {stored}"
                )
        case Write.INVITATION:
            invitation = kept.invitations.get(str(ack.id))
            if invitation is None or (invitation.email, invitation.role) != (
                ack.detail.get("email"),
                ack.detail.get("role"),
            ):
                return f"invitation {ack.id} to {ack.workspace_id} is missing or changed"
        case Write.ACCEPTANCE:
            invitation = kept.invitations.get(str(ack.id))
            if invitation is None or invitation.status != "accepted":
                return f"invitation {ack.id} was accepted and is {invitation and invitation.status}"
            user_id = str(ack.detail.get("user_id"))
            if (
                not workspace_gone
                and not undone.after(Write.REMOVAL, ack.workspace_id, user_id, ack.sequence)
                and (ack.workspace_id, user_id) not in kept.members
            ):
                return f"{user_id} joined {ack.workspace_id} and is not a member"
        case Write.REMOVAL:
            if (ack.workspace_id, str(ack.id)) in kept.members and not undone.after(
                Write.ACCEPTANCE, ack.workspace_id, str(ack.id), ack.sequence
            ):
                return f"{ack.id} was removed from {ack.workspace_id} and is still a member"
        case Write.KEY_CREATED:
            if str(ack.id) not in kept.keys:
                return f"key {ack.id} of {ack.workspace_id} is missing"
        case Write.KEY_REVOKED:
            key = kept.keys.get(str(ack.id))
            if key is None or key.revoked_at is None:
                return f"key {ack.id} was revoked and is {'missing' if key is None else 'not'}"
        case Write.ASSET_CREATED:
            asset = kept.assets.get(str(ack.id))
            if workspace_gone or undone.anywhere_after(
                Write.ASSET_DELETED, str(ack.id), ack.sequence
            ):
                return None
            if asset is None or (asset.kind, asset.status) != (ack.detail.get("kind"), "active"):
                state = "missing" if asset is None else f"a {asset.status} {asset.kind}"
                return f"asset {ack.id} ({ack.detail.get('kind')}) of {ack.workspace_id} is {state}"
        case Write.ASSET_DELETED:
            if str(ack.id) in kept.assets:
                return f"asset {ack.id} was deleted and is still there"
        case Write.SHARE:
            return _share_missing(ack, kept, undone)
        case Write.UNSHARE:
            target = str(ack.detail.get("target"))
            if (str(ack.id), target) in kept.shares and not undone.anywhere_after(
                Write.SHARE, str(ack.id), ack.sequence
            ):
                return f"asset {ack.id} was unshared from {target} and is still shared"
        case Write.ALLOCATION:
            return _allocation_missing(ack, kept, undone)
    return None


def _allocation_missing(ack: Acknowledged, kept: _Kept, undone: _Undone) -> str | None:
    """The last acknowledged allocation of a workspace is what billing keeps."""
    workspace_id = str(ack.id)
    if kept.deleted(workspace_id) or undone.after(
        Write.ALLOCATION, ack.workspace_id, workspace_id, ack.sequence
    ):
        return None
    kept_now = kept.allocated.get(workspace_id, {})
    differ = {
        pool: (answered, kept_now.get(pool))
        for pool, answered in ack.detail.items()
        if kept_now.get(pool) != answered
    }
    if differ:
        return f"allocation to {workspace_id} answered and kept differ: {differ}"
    return None


def _workspace_missing(workspace_id: str, ack: Acknowledged, kept: _Kept) -> str | None:
    workspace = kept.workspaces.get(workspace_id)
    if workspace is None:
        return f"workspace {workspace_id} is not in identity"
    if ack.write is Write.SUB_WORKSPACE_CREATED and str(workspace.parent_id) != str(
        ack.detail.get("parent_id")
    ):
        return f"workspace {workspace_id} has parent {workspace.parent_id}"
    absent = [
        service
        for service, known in (
            ("billing", kept.accounts.keys()),
            *((schema, ids) for schema, ids in kept.copies.items()),
        )
        if workspace_id not in known
    ]
    if absent:
        return f"workspace {workspace_id} is not in " + ", ".join(absent)
    return None


def _purchase_missing(ack: Acknowledged, kept: _Kept) -> str | None:
    transaction_id = ack.detail.get("transaction_id")
    if transaction_id is None:
        return None
    lines = kept.purchase_lines.get(str(transaction_id))
    credited = None if lines is None else lines.get((ack.workspace_id, str(ack.detail.get("pool"))))
    if credited != ack.detail.get("quantity"):
        return (
            f"purchase {transaction_id} of {ack.detail.get('quantity')} "
            f"{ack.detail.get('pool')} credited {ack.workspace_id} with {credited}"
        )
    return None


def _share_missing(ack: Acknowledged, kept: _Kept, undone: _Undone) -> str | None:
    asset_id = str(ack.id)
    if kept.deleted(ack.workspace_id) or undone.anywhere_after(
        Write.ASSET_DELETED, asset_id, ack.sequence
    ):
        return None
    targets = ack.detail.get("targets")
    missing = [
        str(target)
        for target in (targets if isinstance(targets, list | tuple) else [])
        if (asset_id, str(target)) not in kept.shares
        and not kept.deleted(str(target))
        and not undone.after(Write.UNSHARE, ack.workspace_id, f"{asset_id}/{target}", ack.sequence)
    ]
    if missing:
        return f"asset {asset_id} was shared with {', '.join(missing)} and is not"
    return None


def _spends_applied_once(acknowledged: Sequence[Acknowledged], kept: _Kept) -> list[Violation]:
    """Every answer to one Idempotency-Key names one transaction."""
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for ack in acknowledged:
        key = ack.detail.get("idempotency_key")
        if ack.write is Write.SPEND and key is not None:
            by_key[ack.workspace_id, str(key)].add(str(ack.id))
    return [
        Violation(
            "spend-applied-once",
            f"Idempotency-Key {key} in {workspace_id} was answered with transactions "
            + ", ".join(sorted(transactions))
            + f" ({sum(1 for t in transactions if t in kept.transactions)} in the ledger)",
        )
        for (workspace_id, key), transactions in sorted(by_key.items())
        if len(transactions) > 1
    ]
