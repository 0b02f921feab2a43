"""The campaign's checks of capacity: seat pools within their limits and caps and
counted right, and the avatar slots billing holds for the avatars assets keeps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bench.campaign.reading import Scope, Violation, rows
from services.identity.repository.seat_pools import SeatPoolRepository


async def check_seats(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    found: list[Violation] = []
    pools = await rows(
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
    capped = await rows(
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


async def check_avatars(connection: AsyncConnection, scope: Scope) -> list[Violation]:
    found: list[Violation] = []
    slots = await rows(
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
    unmatched = await rows(
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
