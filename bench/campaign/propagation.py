"""The campaign's checks of what one service tells the others: every event published
and applied by each service that consumes it, nothing parked, every copy of another
service's rows equal to its service of record, and a deletion carried out everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bench.campaign.reading import CONSUMERS, OUTBOXES, Scope, Violation, rows, unconsumed


async def check_events(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    unpublished = await rows(
        connection,
        f"SELECT producer, event_id, event_type FROM ({OUTBOXES}) AS o"
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
        for row in await unconsumed(connection, scope, waiting_for_an_operator=True)
    )
    parked = await rows(
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


async def check_copies(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    found: list[Violation] = []
    for copy in _COPIES:
        of_record = _keyed(await rows(connection, copy.of_record, scope), copy.key_columns)
        kept = _keyed(await rows(connection, copy.copy, scope), copy.key_columns)
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


def _keyed(selected: Iterable[Any], key_columns: int) -> dict[Any, tuple[Any, ...]]:
    keyed: dict[Any, tuple[Any, ...]] = {}
    for row in selected:
        values = tuple(row)
        key = values[:key_columns] if key_columns > 1 else values[0]
        keyed[key] = values[key_columns:]
    return keyed


def _name(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(str(part) for part in value) + ")"
    return str(value)


# Other cheap checks -------------------------------------------------------------------


async def check_leftovers(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    found: list[Violation] = []
    members = await rows(
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
    assets = await rows(
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
    keys = await rows(
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
    over = await rows(
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
    headless = await rows(
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
