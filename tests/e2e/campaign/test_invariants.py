"""The fault campaign's checker (bench/campaign/invariants.py) on an account built
through the gateway: quiet and without a violation as the services left it, and
reporting each guarantee that is broken behind a service's back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.campaign.acks import Acknowledged, Write
from bench.campaign.invariants import Violation, settle, violations
from shared.settings import Settings
from tests.e2e.apikeys.support import Person, bearer
from tests.e2e.conftest import RunningSystem

SETTLE_SECONDS = 30.0


@dataclass
class Workload:
    """Requests through the gateway, each write answered 2xx recorded as the campaign's
    workload records it."""

    client: httpx.AsyncClient
    owner: Person
    root_id: str = ""
    acknowledged: list[Acknowledged] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        status: int,
        *,
        by: dict[str, str],
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        response = await self.client.request(
            method, path, headers={**by, **(headers or {})}, **kwargs
        )
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def saw(self, write: Write, workspace_id: str, id_: str | None, **detail: object) -> None:
        self.acknowledged.append(
            Acknowledged(len(self.acknowledged), write, self.root_id, workspace_id, id_, detail)
        )


async def build(workload: Workload) -> None:
    """One account with a bit of everything the campaign does: purchases, a
    sub-workspace with an allocation, members (one removed, one invited only), spends
    (one retried), keys (one revoked, one spent with), assets (an avatar, a shared
    voice, a deleted template) and a deleted sub-workspace."""
    owner = workload.owner.headers
    root = await workload.call("POST", "/v1/workspaces", 201, by=owner, json={"name": "Agency"})
    root_id = workload.root_id = root["id"]
    workload.saw(Write.ROOT_CREATED, root_id, root_id)
    for pool, quantity in (("generative_credits", 1000), ("api_credits", 100)):
        bought = await workload.call(
            "POST",
            f"/v1/workspaces/{root_id}/purchases",
            201,
            by=owner,
            json={"pool": pool, "quantity": quantity},
        )
        workload.saw(
            Write.PURCHASE,
            root_id,
            None,
            pool=pool,
            quantity=quantity,
            transaction_id=bought["transaction_id"],
        )
    sub_id = await sub_workspace(workload, "Client")
    workload.ids["sub"] = sub_id
    allocation = {"generative_credits": 300, "api_credits": 50}
    answered = await workload.call(
        "PUT", f"/v1/workspaces/{sub_id}/allocations", 200, by=owner, json=allocation
    )
    workload.saw(Write.ALLOCATION, root_id, sub_id, **answered)

    creator = await join(workload, root_id, "creator")
    leaver = await join(workload, root_id, "viewer")
    await workload.call(
        "DELETE", f"/v1/workspaces/{root_id}/members/{leaver.user_id}", 204, by=owner
    )
    workload.saw(Write.REMOVAL, root_id, leaver.user_id)
    await invite(workload, sub_id, Person.new("invited"), "viewer")

    key = "retried-" + uuid.uuid4().hex
    for _ in range(2):
        spent = await workload.call(
            "POST",
            f"/v1/workspaces/{root_id}/spend",
            201,
            by=creator.headers,
            headers={"idempotency-key": key},
            json={"operation": "image_creation", "quantity": 3},
        )
        workload.saw(
            Write.SPEND,
            root_id,
            spent["transaction_id"],
            pool=spent["pool"],
            amount=spent["amount"],
            idempotency_key=key,
        )
    workload.ids["spend"] = spent["transaction_id"]
    await spend(workload, root_id, creator, "translation")

    kept_key = await create_key(workload, sub_id)
    revoked_key = await create_key(workload, sub_id)
    await workload.call(
        "DELETE", f"/v1/workspaces/{sub_id}/api-keys/{revoked_key['id']}", 204, by=owner
    )
    workload.saw(Write.KEY_REVOKED, sub_id, revoked_key["id"])
    workload.ids["key"] = kept_key["id"]
    key_spend = "key-spend-" + uuid.uuid4().hex
    spent = await workload.call(
        "POST",
        f"/v1/workspaces/{sub_id}/spend",
        201,
        by=bearer(kept_key["key"]),
        headers={"idempotency-key": key_spend},
        json={"operation": "image_creation", "quantity": 1},
    )
    workload.saw(
        Write.SPEND,
        sub_id,
        spent["transaction_id"],
        pool=spent["pool"],
        amount=spent["amount"],
        idempotency_key=key_spend,
        api_key_id=kept_key["id"],
    )

    workload.ids["avatar"] = await create_asset(workload, root_id, "avatar")
    voice = await create_asset(workload, root_id, "voice")
    await workload.call(
        "POST",
        f"/v1/workspaces/{root_id}/assets/{voice}/shares",
        201,
        by=owner,
        json={"workspace_ids": [sub_id]},
    )
    workload.saw(Write.SHARE, root_id, voice, targets=[sub_id])
    template = await create_asset(workload, root_id, "template")
    await workload.call("DELETE", f"/v1/workspaces/{root_id}/assets/{template}", 204, by=owner)
    workload.saw(Write.ASSET_DELETED, root_id, template)

    gone = workload.ids["gone"] = await sub_workspace(workload, "Former client")
    await workload.call("DELETE", f"/v1/workspaces/{gone}", 202, by=owner)
    workload.saw(Write.WORKSPACE_DELETED, root_id, gone)


async def spend(workload: Workload, workspace_id: str, by: Person, operation: str) -> None:
    key = uuid.uuid4().hex
    spent = await workload.call(
        "POST",
        f"/v1/workspaces/{workspace_id}/spend",
        201,
        by=by.headers,
        headers={"idempotency-key": key},
        json={"operation": operation, "quantity": 1},
    )
    workload.saw(
        Write.SPEND,
        workspace_id,
        spent["transaction_id"],
        pool=spent["pool"],
        amount=spent["amount"],
        idempotency_key=key,
    )


async def sub_workspace(workload: Workload, name: str) -> str:
    created = await workload.call(
        "POST",
        f"/v1/workspaces/{workload.root_id}/sub-workspaces",
        201,
        by=workload.owner.headers,
        json={"name": name, "billing_mode": "parent", "api_access": True},
    )
    workload.saw(
        Write.SUB_WORKSPACE_CREATED,
        workload.root_id,
        created["id"],
        parent_id=workload.root_id,
        billing_mode="parent",
    )
    return str(created["id"])


async def invite(workload: Workload, workspace_id: str, person: Person, role: str) -> str:
    invitation = await workload.call(
        "POST",
        f"/v1/workspaces/{workspace_id}/invitations",
        201,
        by=workload.owner.headers,
        json={"email": person.email, "role": role},
    )
    workload.saw(Write.INVITATION, workspace_id, invitation["id"], email=person.email, role=role)
    return str(invitation["id"])


async def join(workload: Workload, workspace_id: str, role: str) -> Person:
    person = Person.new(role)
    invitation_id = await invite(workload, workspace_id, person, role)
    member = await workload.call(
        "POST", f"/v1/invitations/{invitation_id}/accept", 200, by=person.headers
    )
    workload.saw(Write.ACCEPTANCE, workspace_id, invitation_id, user_id=member["user_id"])
    return person


async def create_key(workload: Workload, workspace_id: str) -> Any:
    created = await workload.call(
        "POST",
        f"/v1/workspaces/{workspace_id}/api-keys",
        201,
        by=workload.owner.headers,
        json={"name": "ci", "monthly_credit_limit": 10},
    )
    workload.saw(Write.KEY_CREATED, workspace_id, created["id"])
    return created


async def create_asset(workload: Workload, workspace_id: str, kind: str) -> str:
    created = await workload.call(
        "POST",
        f"/v1/workspaces/{workspace_id}/assets",
        201,
        by=workload.owner.headers,
        json={"kind": kind, "name": kind.title()},
    )
    workload.saw(Write.ASSET_CREATED, workspace_id, created["id"], kind=kind)
    return str(created["id"])


@pytest.fixture(scope="module")
async def account(system: RunningSystem, settings: Settings) -> Workload:
    async with httpx.AsyncClient(base_url=system.gateway.url, timeout=30) as client:
        workload = Workload(client, Person.new("owner"))
        await build(workload)
    await settle(settings.database_url, [workload.root_id], timeout=SETTLE_SECONDS)
    return workload


async def found(
    settings: Settings, account: Workload, acknowledged: Sequence[Acknowledged] | None = None
) -> list[Violation]:
    return await violations(
        settings.database_url,
        [account.root_id],
        account.acknowledged if acknowledged is None else acknowledged,
    )


def names(found: list[Violation]) -> set[str]:
    return {violation.invariant for violation in found}


@asynccontextmanager
async def behind_the_back(
    admin_engine: AsyncEngine, change: str, undo: str, **params: Any
) -> AsyncIterator[None]:
    """`change` committed as no service would make it (its triggers off, the ledger's
    append-only one included); `undo` the same way afterwards."""
    async with admin_engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(text(change), params)
    try:
        yield
    finally:
        async with admin_engine.begin() as connection:
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text(undo), params)


async def test_an_account_as_the_services_left_it_is_quiet_and_keeps_every_guarantee(
    settings: Settings, account: Workload
) -> None:
    await settle(settings.database_url, [account.root_id], timeout=1)

    assert await found(settings, account) == []


async def test_a_transaction_whose_lines_do_not_sum_to_zero(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    """A purchase's line of the world (the payment provider's side) changed."""
    purchase = next(ack for ack in account.acknowledged if ack.write is Write.PURCHASE)
    transaction_id = str(purchase.detail["transaction_id"])
    world_line = """UPDATE billing.ledger_lines SET amount = amount + :by
                    WHERE transaction_id = :purchase AND workspace_id IS NULL"""
    async with behind_the_back(
        admin_engine, world_line, world_line.replace("+", "-"), by=1, purchase=transaction_id
    ):
        violated = await found(settings, account)

    assert names(violated) == {"ledger-balanced"}
    assert transaction_id in violated[0].detail


async def test_a_balance_that_is_not_the_sum_of_its_lines(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    balance = """UPDATE billing.balances SET balance = balance + :by
                 WHERE workspace_id = :root AND pool = 'generative_credits'"""
    async with behind_the_back(
        admin_engine, balance, balance.replace("+", "-"), by=7, root=account.root_id
    ):
        violated = await found(settings, account)

    assert names(violated) == {"balance-is-sum-of-lines", "balance-is-last-line"}


async def test_a_lost_ledger_line(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    async with admin_engine.connect() as connection:
        line = (
            (
                await connection.execute(
                    text(
                        "SELECT * FROM billing.ledger_lines"
                        " WHERE transaction_id = :spend AND workspace_id = :root"
                    ),
                    {"spend": account.ids["spend"], "root": account.root_id},
                )
            )
            .mappings()
            .one()
        )
    async with behind_the_back(
        admin_engine,
        "DELETE FROM billing.ledger_lines WHERE id = :id",
        """INSERT INTO billing.ledger_lines
           (id, transaction_id, workspace_id, pool, amount, balance_after, created_at)
           VALUES (:id, :transaction_id, :workspace_id, :pool, :amount, :balance_after,
                   :created_at)""",
        **line,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"ledger-balanced", "balance-is-sum-of-lines"}


async def test_an_avatar_fee_that_paid_less_than_its_price(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    price = """UPDATE billing.transactions SET amount = amount + :by
               WHERE kind = 'avatar_claim' AND reference = :avatar"""
    async with behind_the_back(
        admin_engine, price, price.replace("+", "-"), by=1, avatar=account.ids["avatar"]
    ):
        violated = await found(settings, account)

    assert names(violated) == {"charged-as-priced"}


async def test_a_key_whose_spending_is_counted_wrong(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    """billing's monthly budget and apikeys' daily usage of the key that spent."""
    budget = "UPDATE billing.api_key_spending SET spent = spent + :by WHERE budget_id = :key"
    usage = """UPDATE apikeys.key_usage_days SET credits_spent = credits_spent + :by
               WHERE key_id = :key"""
    key = account.ids["key"]
    async with (
        behind_the_back(admin_engine, budget, budget.replace("+", "-"), by=1, key=key),
        behind_the_back(admin_engine, usage, usage.replace("+", "-"), by=1, key=key),
    ):
        violated = await found(settings, account)

    assert names(violated) == {"key-budget-counts-spends", "key-usage-counts-credits"}


async def test_a_seat_pool_whose_count_is_not_its_rows(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    seated = "UPDATE identity.seat_pools SET seated = seated + :by WHERE billing_root_id = :root"
    async with behind_the_back(
        admin_engine, seated, seated.replace("+", "-"), by=1, root=account.root_id
    ):
        violated = await found(settings, account)

    assert names(violated) == {"seat-count-kept"}


async def test_a_seat_pool_over_its_limit_and_a_workspace_over_its_cap(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    """Two members and an invitation in the pool; one invitation in the sub-workspace."""
    limit = "UPDATE identity.seat_pools SET seats_limit = {} WHERE billing_root_id = :root"
    cap = "UPDATE identity.workspaces SET seats_cap = {} WHERE id = :sub"
    async with admin_engine.connect() as connection:
        was = await connection.scalar(
            text("SELECT seats_limit FROM identity.seat_pools WHERE billing_root_id = :root"),
            {"root": account.root_id},
        )
    async with (
        behind_the_back(
            admin_engine, limit.format(2), limit.format(":was"), root=account.root_id, was=was
        ),
        behind_the_back(admin_engine, cap.format(0), cap.format("NULL"), sub=account.ids["sub"]),
    ):
        violated = await found(settings, account)

    assert names(violated) == {
        "seats-within-limit",
        "seat-limit-copied",
        "seats-within-cap",
        "seat-cap-copied",
    }


async def test_avatar_slots_in_use_that_no_avatar_takes(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    in_use = """UPDATE billing.balances SET in_use = in_use + :by
                WHERE workspace_id = :root AND pool = 'avatar_slots'"""
    async with behind_the_back(
        admin_engine, in_use, in_use.replace("+", "-"), by=1, root=account.root_id
    ):
        violated = await found(settings, account)

    assert names(violated) == {"avatar-slots-in-use"}


async def test_an_avatar_whose_slot_billing_does_not_hold(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    claim = "UPDATE billing.avatar_claims SET avatar_id = {} WHERE avatar_id = {}"
    stray = str(uuid.uuid4())
    async with behind_the_back(
        admin_engine,
        claim.format(":stray", ":avatar"),
        claim.format(":avatar", ":stray"),
        avatar=account.ids["avatar"],
        stray=stray,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"avatar-claims"}
    assert {account.ids["avatar"], stray} <= {
        part for violation in violated for part in violation.detail.split()
    }


async def test_an_unpublished_event_keeps_the_account_from_settling(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    """identity's relays are held off its outbox (every lane's lock taken), so that the
    row stays unpublished while it is looked at."""
    async with admin_engine.connect() as holder:
        await holder.execute(
            text(
                "SELECT pg_advisory_lock(hashtext('atrium.outbox.identity'), lane)"
                " FROM generate_series(0, :lanes - 1) AS lane"
            ),
            {"lanes": settings.outbox_lanes},
        )
        await holder.commit()
        last = """UPDATE identity.outbox SET published_at = {value} WHERE id = (
                      SELECT max(id) FROM identity.outbox WHERE message_key = :root)"""
        try:
            async with behind_the_back(
                admin_engine,
                last.format(value="NULL"),
                last.format(value="now()"),
                root=account.root_id,
            ):
                with pytest.raises(TimeoutError, match="events of identity unpublished"):
                    await settle(settings.database_url, [account.root_id], timeout=0.5)
                violated = await found(settings, account)
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock_all()"))

    assert names(violated) == {"outbox-published"}


async def test_an_event_a_consumer_never_applied_keeps_the_account_from_settling(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    async with admin_engine.connect() as connection:
        created = (
            (
                await connection.execute(
                    text(
                        "SELECT i.* FROM gateway.inbox AS i JOIN identity.outbox AS o"
                        " ON o.event_id = i.event_id"
                        " WHERE o.message_key = :root AND o.event_type = 'workspace.created'"
                        " ORDER BY o.id LIMIT 1"
                    ),
                    {"root": account.root_id},
                )
            )
            .mappings()
            .one()
        )
    async with behind_the_back(
        admin_engine,
        "DELETE FROM gateway.inbox WHERE event_id = :event_id",
        """INSERT INTO gateway.inbox (event_id, event_type, processed_at, outcome, rejection)
           VALUES (:event_id, :event_type, :processed_at, :outcome, :rejection)""",
        **created,
    ):
        with pytest.raises(TimeoutError, match="not yet applied by gateway"):
            await settle(settings.database_url, [account.root_id], timeout=0.5)
        violated = await found(settings, account)

    assert names(violated) == {"event-consumed"}
    assert str(created["event_id"]) in violated[0].detail


async def test_a_parked_event(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    event_id = str(uuid.uuid4())
    async with behind_the_back(
        admin_engine,
        """INSERT INTO billing.parked_events
           (event_id, topic, message_key, event_type, event_version, envelope, state,
            attempts, last_error)
           VALUES (:event_id, 'atrium.identity.workspace', :root, 'workspace.updated', 1,
                   '{}', 'parked', 5, 'the handler failed')""",
        "DELETE FROM billing.parked_events WHERE event_id = :event_id",
        event_id=event_id,
        root=account.root_id,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"event-parked"}
    assert event_id in violated[0].detail


async def test_a_projection_row_the_gateway_lost(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    async with behind_the_back(
        admin_engine,
        "DELETE FROM gateway.memberships WHERE workspace_id = :root AND user_id = :owner",
        """INSERT INTO gateway.memberships (workspace_id, user_id, role)
           VALUES (:root, :owner, 'super_admin')""",
        root=account.root_id,
        owner=account.owner.user_id,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"copy-of-memberships"}
    assert account.owner.user_id in violated[0].detail


async def test_a_key_the_gateway_thinks_usable_after_its_revocation(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    [revoked] = [ack.id for ack in account.acknowledged if ack.write is Write.KEY_REVOKED]
    revocation = "UPDATE gateway.api_keys SET revoked_at = {value} WHERE key_id = :key"
    async with admin_engine.connect() as connection:
        revoked_at = await connection.scalar(
            text("SELECT revoked_at FROM gateway.api_keys WHERE key_id = :key"), {"key": revoked}
        )
    async with behind_the_back(
        admin_engine,
        revocation.format(value="NULL"),
        revocation.format(value=":at"),
        key=revoked,
        at=revoked_at,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"copy-of-keys"}


async def test_a_workspace_that_a_service_keeps_otherwise(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    flip = "UPDATE apikeys.workspaces SET api_access = NOT api_access WHERE id = :sub"
    async with behind_the_back(admin_engine, flip, flip, sub=account.ids["sub"]):
        violated = await found(settings, account)

    assert names(violated) == {"copy-of-workspaces"}
    assert account.ids["sub"] in violated[0].detail


async def test_seat_usage_that_billing_keeps_otherwise(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    used = "UPDATE billing.accounts SET seats_used = seats_used + :by WHERE workspace_id = :root"
    async with behind_the_back(
        admin_engine, used, used.replace("+", "-"), by=1, root=account.root_id
    ):
        violated = await found(settings, account)

    assert names(violated) == {"seat-usage-copied"}


async def test_a_member_left_in_a_deleted_workspace(
    settings: Settings, admin_engine: AsyncEngine, account: Workload
) -> None:
    async with behind_the_back(
        admin_engine,
        """INSERT INTO identity.memberships (workspace_id, user_id, role)
           VALUES (:gone, :owner, 'viewer')""",
        "DELETE FROM identity.memberships WHERE workspace_id = :gone AND user_id = :owner",
        gone=account.ids["gone"],
        owner=account.owner.user_id,
    ):
        violated = await found(settings, account)

    assert names(violated) == {"member-of-deleted-workspace", "copy-of-memberships"}


async def test_acknowledged_writes_that_are_not_there(
    settings: Settings, account: Workload
) -> None:
    """One write of each kind answered 2xx after the account was built, that its
    services do not keep as answered."""
    root, sub, phantom = account.root_id, account.ids["sub"], str(uuid.uuid4())

    def first(write: Write) -> Acknowledged:
        return next(ack for ack in account.acknowledged if ack.write is write)

    pending = next(
        ack
        for ack in account.acknowledged
        if ack.write is Write.INVITATION and ack.workspace_id == sub
    )
    voice = next(
        ack
        for ack in account.acknowledged
        if ack.write is Write.ASSET_CREATED and ack.detail["kind"] == "voice"
    )
    purchase = first(Write.PURCHASE)
    unanswered = [
        Acknowledged(0, Write.ROOT_CREATED, root, phantom, phantom),
        Acknowledged(0, Write.SUB_WORKSPACE_CREATED, root, root, sub, {"parent_id": phantom}),
        Acknowledged(0, Write.WORKSPACE_DELETED, root, root, sub),
        replace(purchase, detail={**purchase.detail, "quantity": 1}),
        Acknowledged(0, Write.ALLOCATION, root, root, sub, {"generative_credits": 999}),
        replace(
            first(Write.SPEND),
            id=phantom,
            detail={**first(Write.SPEND).detail, "idempotency_key": "x"},
        ),
        replace(first(Write.INVITATION), id=phantom),
        Acknowledged(0, Write.ACCEPTANCE, root, sub, pending.id, {"user_id": "someone"}),
        Acknowledged(0, Write.REMOVAL, root, root, account.owner.user_id),
        Acknowledged(0, Write.KEY_CREATED, root, sub, phantom),
        Acknowledged(0, Write.KEY_REVOKED, root, sub, account.ids["key"]),
        replace(first(Write.ASSET_CREATED), id=phantom),
        replace(first(Write.ASSET_CREATED), write=Write.ASSET_DELETED),
        replace(voice, write=Write.SHARE, detail={"targets": [root]}),
        replace(voice, write=Write.UNSHARE, detail={"target": sub}),
    ]
    later = len(account.acknowledged)
    acknowledged = [
        *account.acknowledged,
        *(replace(ack, sequence=later + n) for n, ack in enumerate(unanswered)),
    ]

    violated = await found(settings, account, acknowledged)

    assert sorted((v.detail.split()[0], v.invariant) for v in violated) == sorted(
        (f"#{later + n}", f"acknowledged-{ack.write.value}") for n, ack in enumerate(unanswered)
    )


async def test_one_idempotency_key_answered_with_two_transactions(
    settings: Settings, account: Workload
) -> None:
    """The account's first spend and another of the same workspace, answered for one
    Idempotency-Key."""
    spend, _retried, other, *_ = [ack for ack in account.acknowledged if ack.write is Write.SPEND]
    twice = replace(
        other,
        sequence=len(account.acknowledged),
        detail={**other.detail, "idempotency_key": spend.detail["idempotency_key"]},
    )

    violated = await found(settings, account, [*account.acknowledged, twice])

    assert names(violated) == {"spend-applied-once"}


async def test_a_deletion_of_unknown_outcome_excuses_what_it_may_have_deleted(
    settings: Settings, account: Workload
) -> None:
    """A deletion that got no answer (or a 5xx) may have been applied: the asset it
    names is not looked for after it, and the deletion itself is never looked for."""
    later = len(account.acknowledged)
    created = replace(
        next(ack for ack in account.acknowledged if ack.write is Write.ASSET_CREATED),
        sequence=later,
        id=str(uuid.uuid4()),
    )
    deletion = replace(created, sequence=later + 1, write=Write.ASSET_DELETED, answered=False)

    assert names(await found(settings, account, [*account.acknowledged, created])) == {
        "acknowledged-asset_created"
    }
    assert await found(settings, account, [*account.acknowledged, created, deletion]) == []


async def test_an_allocation_of_unknown_outcome_excuses_the_answered_one_before_it(
    settings: Settings, account: Workload
) -> None:
    """An allocation PUT (it carries no Idempotency-Key) that got a 5xx may have been
    applied: the allocation answered before it is no longer what billing must keep."""
    root, sub, later = account.root_id, account.ids["sub"], len(account.acknowledged)
    answered = Acknowledged(later, Write.ALLOCATION, root, sub, sub, {"generative_credits": 999})
    unknown = replace(answered, sequence=later + 1, detail={}, answered=False)

    assert names(await found(settings, account, [*account.acknowledged, answered])) == {
        "acknowledged-allocation"
    }
    assert await found(settings, account, [*account.acknowledged, answered, unknown]) == []


async def test_a_share_of_unknown_outcome_excuses_the_answered_unshare_before_it(
    settings: Settings, account: Workload
) -> None:
    """A share that got no answer (or a 5xx) may have been applied: the asset an answered
    unshare took back before it may be shared again."""
    voice = next(
        ack
        for ack in account.acknowledged
        if ack.write is Write.ASSET_CREATED and ack.detail["kind"] == "voice"
    )
    sub, later = account.ids["sub"], len(account.acknowledged)
    unshare = replace(voice, sequence=later, write=Write.UNSHARE, detail={"target": sub})
    share = replace(
        voice, sequence=later + 1, write=Write.SHARE, detail={"targets": [sub]}, answered=False
    )

    assert names(await found(settings, account, [*account.acknowledged, unshare])) == {
        "acknowledged-unshare"
    }
    assert await found(settings, account, [*account.acknowledged, unshare, share]) == []
