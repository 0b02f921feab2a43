"""The campaign's check of what the workload saw acknowledged (`bench.campaign.acks`):
every write answered 2xx is where its service of record keeps it, unless a later
acknowledged write undid it, and no Idempotency-Key was applied twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bench.campaign.acks import Acknowledged, Write
from bench.campaign.reading import Scope, Violation, rows


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
    async def read(cls, connection: AsyncConnection, scope: Scope) -> _Kept:
        async def by_id(sql: str) -> dict[str, Any]:
            return {str(row[0]): row for row in await rows(connection, sql, scope)}

        lines: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        for row in await rows(
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
                for row in await rows(
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
                for row in await rows(
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
                for row in await rows(
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
        connection: AsyncConnection, scope: Scope
    ) -> dict[str, dict[str, int | None]]:
        allocated: dict[str, dict[str, int | None]] = defaultdict(dict)
        for row in await rows(
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


async def check_acknowledged(
    connection: AsyncConnection, scope: Scope, acknowledged: Sequence[Acknowledged]
) -> list[Violation]:
    kept = await _Kept.read(connection, scope)
    undone = _Undone(acknowledged)
    roots = {str(root) for root in scope.roots}
    found: list[Violation] = []
    for ack in sorted(acknowledged, key=lambda ack: ack.sequence):
        if ack.root_id not in roots or not ack.answered:
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
