"""The campaign's workload: accounts used through the gateway as their people use them,
by several workers at once, while processes die under them.

Each account is a root workspace with sub-workspaces (billed by it, with API access)
and people in four roles. The workers spend (with an `Idempotency-Key`; with an API key
too), buy, allocate, invite, accept and remove, create and delete sub-workspaces, API
keys and assets, and share. A seeded `random.Random` per worker decides every choice,
so that a seed names a run (the interleaving of the workers is the machine's).

Every write the gateway answers 2xx is recorded (`Acknowledged`); a connection error, a
timeout or a 5xx is what a killed process looks like from outside: counted, and a write
that carries an `Idempotency-Key` is sometimes sent again with the same key, as a real
client does, and recorded once when that answers 2xx.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

import httpx

from bench.campaign.acks import Acknowledged, Write
from bench.system import Person
from contracts.permissions import Role
from shared.settings import Settings

REQUEST_TIMEOUT_SECONDS = 10.0
IMPATIENT_TIMEOUT_SECONDS = (0.02, 0.3)
"""A spend sometimes waits only this long for its first answer (then retries with the
same key): the server may still apply it after the client gave up."""
RETRY_CHANCE = 0.7
MAX_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = (0.2, 1.0)
SUB_WORKSPACES_KEPT = 2
"""Each account's first sub-workspaces are never deleted, so that there is always
somewhere to allocate, invite and share to."""
T = TypeVar("T")
SPENDS = ("image_creation", "video_generation", "translation")


class Operation(StrEnum):
    """What a worker does, and what the figures count by."""

    SPEND = "spend"
    KEY_SPEND = "key_spend"
    PURCHASE = "purchase"
    ALLOCATION = "allocation"
    INVITATION = "invitation"
    ACCEPTANCE = "acceptance"
    REMOVAL = "removal"
    SUB_WORKSPACE = "sub_workspace"
    DELETION = "workspace_deletion"
    KEY_CREATION = "key_creation"
    KEY_REVOCATION = "key_revocation"
    ASSET_CREATION = "asset_creation"
    ASSET_DELETION = "asset_deletion"
    SHARE = "share"
    UNSHARE = "unshare"
    SET_UP = "set_up"


WEIGHTS: Mapping[Operation, int] = {
    Operation.SPEND: 30,
    Operation.KEY_SPEND: 15,
    Operation.PURCHASE: 4,
    Operation.ALLOCATION: 6,
    Operation.INVITATION: 6,
    Operation.ACCEPTANCE: 5,
    Operation.REMOVAL: 4,
    Operation.SUB_WORKSPACE: 3,
    Operation.DELETION: 2,
    Operation.KEY_CREATION: 4,
    Operation.KEY_REVOCATION: 2,
    Operation.ASSET_CREATION: 6,
    Operation.ASSET_DELETION: 3,
    Operation.SHARE: 4,
    Operation.UNSHARE: 2,
}


class Acknowledgements:
    """The writes answered 2xx, numbered in the order the answers came."""

    def __init__(self) -> None:
        self.writes: list[Acknowledged] = []

    def record(
        self,
        write: Write,
        root_id: str,
        workspace_id: str,
        id: str | None = None,  # noqa: A002 - the field's name in `Acknowledged`
        **detail: object,
    ) -> None:
        self.writes.append(Acknowledged(len(self.writes), write, root_id, workspace_id, id, detail))

    def add(self, write: Acknowledged, *, answered: bool) -> None:
        """`write` (its sequence is given here), answered 2xx or of unknown outcome."""
        self.writes.append(replace(write, sequence=len(self.writes), answered=answered))

    @property
    def answered(self) -> list[Acknowledged]:
        """The writes answered 2xx (without those whose outcome is unknown)."""
        return [ack for ack in self.writes if ack.answered]


@dataclass
class Tally:
    """What the workload attempted, what was answered 2xx, refused (4xx, by status) or
    failed (by what went wrong: each failed attempt, retries included), by operation."""

    attempted: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    refused: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failed: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    retried: Counter[str] = field(default_factory=Counter)

    def figures(self) -> dict[str, Any]:
        return {
            "attempted": dict(sorted(self.attempted.items())),
            "acknowledged": dict(sorted(self.acknowledged.items())),
            "refused": {kind: dict(statuses) for kind, statuses in sorted(self.refused.items())},
            "failed": {kind: dict(reasons) for kind, reasons in sorted(self.failed.items())},
            "retried": dict(sorted(self.retried.items())),
        }


@dataclass
class Key:
    id: str
    secret: str


@dataclass
class Workspace:
    id: str
    members: dict[str, tuple[Person, Role]] = field(default_factory=dict)
    """By user id: the people invited here during the run (the account's staff is at
    the root)."""
    keys: list[Key] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    allocated: int = 0
    """The generative credits last allocated to it (a sub-workspace)."""


@dataclass
class Invitation:
    id: str
    workspace_id: str
    invitee: Person


@dataclass
class Account:
    """A root workspace, its people by role, and what the run made in it."""

    root: Workspace
    staff: dict[Role, Person]
    subs: list[Workspace] = field(default_factory=list)
    pending: list[Invitation] = field(default_factory=list)
    shares: list[tuple[str, str]] = field(default_factory=list)
    """(asset id, target workspace id) of the root's assets shared to a sub-workspace."""

    @property
    def owner(self) -> Person:
        return self.staff[Role.SUPER_ADMIN]

    @property
    def root_id(self) -> str:
        return self.root.id

    def workspace(self, rng: random.Random) -> Workspace:
        return rng.choice([self.root, *self.subs])

    def deletable(self) -> list[Workspace]:
        return self.subs[SUB_WORKSPACES_KEPT:]


class Workload:
    """Accounts used by `workers` workers at once until asked to stop."""

    def __init__(
        self,
        gateway: httpx.AsyncClient,
        settings: Settings,
        *,
        seed: int,
        accounts: int,
        workers: int,
    ) -> None:
        self.gateway = gateway
        self.settings = settings
        self.seed = seed
        self.account_count = accounts
        self.worker_count = workers
        self.accounts: list[Account] = []
        self.setup_rng = random.Random(f"{seed}-accounts")
        self.setting_up = False
        self.acks = Acknowledgements()
        self.tally = Tally()

    @property
    def root_ids(self) -> list[str]:
        return [account.root_id for account in self.accounts]

    async def open_accounts(self) -> None:
        """The accounts, each with its staff at the root and its kept sub-workspaces,
        made before anything is killed (a step that fails is tried again)."""
        rng = self.setup_rng
        self.setting_up = True
        for number in range(self.account_count):
            owner = Person.new(f"owner{number}", self.settings)
            root = await self._until_done(partial(self.create_root, owner, f"Account {number}"))
            account = Account(Workspace(root), {Role.SUPER_ADMIN: owner})
            for role in (Role.DEVELOPER, Role.CREATOR, Role.VIEWER):
                account.staff[role] = await self._until_done(
                    partial(self.staff_member, account, role, rng)
                )
            for _ in range(SUB_WORKSPACES_KEPT):
                await self._until_done(partial(self.sub_workspace, account, rng))
            self.accounts.append(account)
        self.setting_up = False

    async def create_root(self, owner: Person, name: str) -> str | None:
        created = await self.write(
            Operation.SET_UP, "POST", "/v1/workspaces", owner, self.setup_rng, {"name": name}
        )
        if created is None:
            return None
        root_id = str(created["id"])
        self.acks.record(Write.ROOT_CREATED, root_id, root_id, root_id)
        return root_id

    async def staff_member(self, account: Account, role: Role, rng: random.Random) -> Person | None:
        person = Person.new(role.value, self.settings)
        invitation = await self.invite(account, account.root, person, role, rng)
        if invitation is None or not await self.accept(account, invitation, rng):
            return None
        return person

    async def run(self, stop: asyncio.Event) -> None:
        """Every worker busy until `stop` is set; each finishes the operation in hand."""
        await asyncio.gather(
            *(
                self.worker(random.Random(f"{self.seed}-worker-{n}"), stop)
                for n in range(self.worker_count)
            )
        )

    async def worker(self, rng: random.Random, stop: asyncio.Event) -> None:
        operations = list(WEIGHTS)
        weights = list(WEIGHTS.values())
        doing: dict[Operation, Callable[[Account, random.Random], Awaitable[object]]] = {
            Operation.SPEND: self.spend,
            Operation.KEY_SPEND: self.key_spend,
            Operation.PURCHASE: self.purchase,
            Operation.ALLOCATION: self.allocate,
            Operation.INVITATION: self.invitation,
            Operation.ACCEPTANCE: self.acceptance,
            Operation.REMOVAL: self.removal,
            Operation.SUB_WORKSPACE: self.sub_workspace,
            Operation.DELETION: self.delete_sub_workspace,
            Operation.KEY_CREATION: self.create_key,
            Operation.KEY_REVOCATION: self.revoke_key,
            Operation.ASSET_CREATION: self.create_asset,
            Operation.ASSET_DELETION: self.delete_asset,
            Operation.SHARE: self.share,
            Operation.UNSHARE: self.unshare,
        }
        while not stop.is_set():
            [operation] = rng.choices(operations, weights)
            await doing[operation](rng.choice(self.accounts), rng)

    # Spending and credits

    async def spend(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        if workspace is account.root:
            who = account.staff[rng.choice((Role.SUPER_ADMIN, Role.DEVELOPER, Role.CREATOR))]
        else:
            who = account.owner
        await self._spend(Operation.SPEND, account, workspace, who.headers, rng, key=None)

    async def key_spend(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        if not workspace.keys:
            return
        key = rng.choice(workspace.keys)
        headers = {"x-api-key": key.secret}
        await self._spend(Operation.KEY_SPEND, account, workspace, headers, rng, key=key)

    async def _spend(
        self,
        operation: Operation,
        account: Account,
        workspace: Workspace,
        headers: dict[str, str],
        rng: random.Random,
        *,
        key: Key | None,
    ) -> None:
        idempotency_key = str(uuid.UUID(int=rng.getrandbits(128)))
        body = {"operation": rng.choice(SPENDS), "quantity": rng.randint(1, 3)}
        impatient = rng.random() < 0.1
        receipt = await self.write(
            operation,
            "POST",
            f"/v1/workspaces/{workspace.id}/spend",
            headers,
            rng,
            body,
            idempotency_key=idempotency_key,
            first_timeout=rng.uniform(*IMPATIENT_TIMEOUT_SECONDS) if impatient else None,
        )
        if receipt is not None:
            self.acks.record(
                Write.SPEND,
                account.root_id,
                workspace.id,
                str(receipt["transaction_id"]),
                pool=receipt["pool"],
                amount=receipt["amount"],
                idempotency_key=idempotency_key,
                **({} if key is None else {"api_key_id": key.id}),
            )

    async def purchase(self, account: Account, rng: random.Random) -> None:
        body = {
            "pool": rng.choice(("generative_credits", "api_credits")),
            "quantity": rng.randint(100, 1000),
        }
        receipt = await self.write(
            Operation.PURCHASE,
            "POST",
            f"/v1/workspaces/{account.root_id}/purchases",
            account.owner,
            rng,
            body,
        )
        if receipt is not None:
            self.acks.record(
                Write.PURCHASE,
                account.root_id,
                account.root_id,
                pool=body["pool"],
                quantity=body["quantity"],
                transaction_id=str(receipt["transaction_id"]),
            )

    async def allocate(self, account: Account, rng: random.Random) -> None:
        if not account.subs:
            return
        sub = rng.choice(account.subs)
        wanted = max(0, sub.allocated + rng.randint(-50, 200))
        body = {"generative_credits": wanted, "api_credits": rng.randint(0, 300)}
        allocation = await self.write(
            Operation.ALLOCATION,
            "PUT",
            f"/v1/workspaces/{sub.id}/allocations",
            account.owner,
            rng,
            body,
            if_unknown=lambda: self.acks.add(
                Acknowledged(0, Write.ALLOCATION, account.root_id, sub.id, sub.id), answered=False
            ),
        )
        if allocation is not None:
            sub.allocated = int(allocation["generative_credits"])
            self.acks.record(Write.ALLOCATION, account.root_id, sub.id, sub.id, **allocation)

    # Members

    async def invitation(self, account: Account, rng: random.Random) -> None:
        role = rng.choice((Role.DEVELOPER, Role.CREATOR, Role.VIEWER))
        await self.invite(
            account, account.workspace(rng), Person.new(role.value, self.settings), role, rng
        )

    async def invite(
        self,
        account: Account,
        workspace: Workspace,
        invitee: Person,
        role: Role,
        rng: random.Random,
    ) -> Invitation | None:
        created = await self.write(
            Operation.INVITATION,
            "POST",
            f"/v1/workspaces/{workspace.id}/invitations",
            account.owner,
            rng,
            {"email": invitee.email, "role": role.value},
        )
        if created is None:
            return None
        invitation = Invitation(str(created["id"]), workspace.id, invitee)
        self.acks.record(
            Write.INVITATION,
            account.root_id,
            workspace.id,
            invitation.id,
            email=invitee.email,
            role=role.value,
        )
        if not self.setting_up:
            account.pending.append(invitation)
        return invitation

    async def acceptance(self, account: Account, rng: random.Random) -> None:
        if not account.pending:
            return
        invitation = account.pending.pop(rng.randrange(len(account.pending)))
        await self.accept(account, invitation, rng)

    async def accept(self, account: Account, invitation: Invitation, rng: random.Random) -> bool:
        membership = await self.write(
            Operation.ACCEPTANCE,
            "POST",
            f"/v1/invitations/{invitation.id}/accept",
            invitation.invitee,
            rng,
        )
        if membership is None:
            return False
        user_id = str(membership["user_id"])
        self.acks.record(
            Write.ACCEPTANCE,
            account.root_id,
            invitation.workspace_id,
            invitation.id,
            user_id=user_id,
        )
        workspace = self._workspace(account, invitation.workspace_id)
        if workspace is not None and not self.setting_up:
            workspace.members[user_id] = (invitation.invitee, Role(membership["role"]))
        return True

    async def removal(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        if not workspace.members:
            return
        user_id = rng.choice(sorted(workspace.members))
        person, _ = workspace.members.pop(user_id)
        who = person if rng.random() < 0.3 else account.owner  # some leave by themselves
        await self.undo(
            Operation.REMOVAL,
            f"/v1/workspaces/{workspace.id}/members/{user_id}",
            who,
            rng,
            Acknowledged(-1, Write.REMOVAL, account.root_id, workspace.id, user_id),
        )

    # Sub-workspaces

    async def sub_workspace(self, account: Account, rng: random.Random) -> str | None:
        body = {
            "name": f"Team {rng.randrange(10_000)}",
            "billing_mode": "parent",
            "api_access": True,
            "strict_quota": rng.random() < 0.5,
        }
        created = await self.write(
            Operation.SUB_WORKSPACE,
            "POST",
            f"/v1/workspaces/{account.root_id}/sub-workspaces",
            account.owner,
            rng,
            body,
        )
        if created is None:
            return None
        sub_id = str(created["id"])
        account.subs.append(Workspace(sub_id))
        self.acks.record(
            Write.SUB_WORKSPACE_CREATED,
            account.root_id,
            sub_id,
            sub_id,
            parent_id=account.root_id,
            billing_mode=body["billing_mode"],
        )
        return sub_id

    async def delete_sub_workspace(self, account: Account, rng: random.Random) -> None:
        deletable = account.deletable()
        if not deletable:
            return
        doomed = rng.choice(deletable)
        account.subs.remove(doomed)
        account.pending = [i for i in account.pending if i.workspace_id != doomed.id]
        account.shares = [share for share in account.shares if share[1] != doomed.id]
        await self.undo(
            Operation.DELETION,
            f"/v1/workspaces/{doomed.id}?cascade=true",
            account.owner,
            rng,
            Acknowledged(-1, Write.WORKSPACE_DELETED, account.root_id, doomed.id, doomed.id),
        )

    # API keys

    async def create_key(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        who = account.staff[Role.DEVELOPER] if workspace is account.root else account.owner
        body = {"name": f"key {rng.randrange(10_000)}"}
        created = await self.write(
            Operation.KEY_CREATION,
            "POST",
            f"/v1/workspaces/{workspace.id}/api-keys",
            who,
            rng,
            body,
        )
        if created is not None:
            workspace.keys.append(Key(str(created["id"]), str(created["key"])))
            self.acks.record(Write.KEY_CREATED, account.root_id, workspace.id, str(created["id"]))

    async def revoke_key(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        if not workspace.keys:
            return
        key = workspace.keys.pop(rng.randrange(len(workspace.keys)))
        await self.undo(
            Operation.KEY_REVOCATION,
            f"/v1/workspaces/{workspace.id}/api-keys/{key.id}",
            account.owner,
            rng,
            Acknowledged(-1, Write.KEY_REVOKED, account.root_id, workspace.id, key.id),
        )

    # Assets

    async def create_asset(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        who = account.staff[Role.CREATOR] if workspace is account.root else account.owner
        kind = rng.choice(("avatar", "avatar", "voice", "template"))
        created = await self.write(
            Operation.ASSET_CREATION,
            "POST",
            f"/v1/workspaces/{workspace.id}/assets",
            who,
            rng,
            {"kind": kind, "name": f"{kind} {rng.randrange(10_000)}"},
        )
        if created is not None:
            workspace.assets.append(str(created["id"]))
            self.acks.record(
                Write.ASSET_CREATED, account.root_id, workspace.id, str(created["id"]), kind=kind
            )

    async def delete_asset(self, account: Account, rng: random.Random) -> None:
        workspace = account.workspace(rng)
        if not workspace.assets:
            return
        asset_id = workspace.assets.pop(rng.randrange(len(workspace.assets)))
        account.shares = [share for share in account.shares if share[0] != asset_id]
        await self.undo(
            Operation.ASSET_DELETION,
            f"/v1/workspaces/{workspace.id}/assets/{asset_id}",
            account.owner,
            rng,
            Acknowledged(-1, Write.ASSET_DELETED, account.root_id, workspace.id, asset_id),
        )

    async def share(self, account: Account, rng: random.Random) -> None:
        if not account.root.assets or not account.subs:
            return
        asset_id = rng.choice(account.root.assets)
        targets = sorted(
            {
                sub.id
                for sub in rng.sample(
                    account.subs, rng.randint(1, 2) if len(account.subs) > 1 else 1
                )
            }
        )
        ack = Acknowledged(
            -1, Write.SHARE, account.root_id, account.root_id, asset_id, {"targets": targets}
        )
        shared = await self.write(
            Operation.SHARE,
            "POST",
            f"/v1/workspaces/{account.root_id}/assets/{asset_id}/shares",
            account.owner,
            rng,
            {"workspace_ids": targets},
            # Unanswered, it may still have shared again what an answered unshare took back.
            if_unknown=lambda: self.acks.add(ack, answered=False),
        )
        if shared is not None:
            account.shares.extend((asset_id, target) for target in targets)
            self.acks.add(ack, answered=True)

    async def unshare(self, account: Account, rng: random.Random) -> None:
        if not account.shares:
            return
        asset_id, target = account.shares.pop(rng.randrange(len(account.shares)))
        await self.undo(
            Operation.UNSHARE,
            f"/v1/workspaces/{account.root_id}/assets/{asset_id}/shares/{target}",
            account.owner,
            rng,
            Acknowledged(
                -1, Write.UNSHARE, account.root_id, account.root_id, asset_id, {"target": target}
            ),
        )

    # Requests

    async def write(
        self,
        operation: Operation,
        method: str,
        path: str,
        who: Person | dict[str, str],
        rng: random.Random,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        first_timeout: float | None = None,
        if_unknown: Callable[[], None] | None = None,
    ) -> dict[str, Any] | None:
        """The answer's body (`{}` when empty) when the write was answered 2xx, else None.
        A POST carries an `Idempotency-Key`; a write that failed (no answer, or a 5xx) is
        sometimes sent again, a POST with the same key. `if_unknown` is called when the
        write ends without a 2xx after an attempt that may have been applied (no answer,
        or a 5xx): a later refusal (a 404 for what that attempt deleted) proves nothing."""
        unknown = False
        if self.setting_up:
            operation = Operation.SET_UP
        self.tally.attempted[operation] += 1
        headers = dict(who.headers if isinstance(who, Person) else who)
        if method == "POST":
            headers["idempotency-key"] = idempotency_key or str(uuid.UUID(int=rng.getrandbits(128)))
        timeout = first_timeout or REQUEST_TIMEOUT_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                self.tally.retried[operation] += 1
                await asyncio.sleep(rng.uniform(*RETRY_PAUSE_SECONDS))
            try:
                response = await self.gateway.request(
                    method, path, json=body, headers=headers, timeout=timeout
                )
            except httpx.TimeoutException:
                self.tally.failed[operation]["timeout"] += 1
            except httpx.TransportError:
                self.tally.failed[operation]["connection"] += 1
            else:
                if response.is_success:
                    self.tally.acknowledged[operation] += 1
                    answer: dict[str, Any] = response.json() if response.content else {}
                    return answer
                if response.status_code < 500:
                    self.tally.refused[operation][str(response.status_code)] += 1
                    break
                self.tally.failed[operation][str(response.status_code)] += 1
            unknown = True
            timeout = REQUEST_TIMEOUT_SECONDS
            if rng.random() >= RETRY_CHANCE:
                break
        if unknown and if_unknown is not None:
            if_unknown()
        return None

    async def undo(
        self,
        operation: Operation,
        path: str,
        who: Person | dict[str, str],
        rng: random.Random,
        ack: Acknowledged,
    ) -> None:
        """A deletion, revocation, removal or unshare (`DELETE path`), recorded as `ack`
        when answered 2xx and as of unknown outcome when it may have been applied."""
        done = await self.write(
            operation,
            "DELETE",
            path,
            who,
            rng,
            if_unknown=lambda: self.acks.add(ack, answered=False),
        )
        if done is not None:
            self.acks.add(ack, answered=True)

    @staticmethod
    async def _until_done(step: Callable[[], Awaitable[T | None]]) -> T:
        """A set-up step tried until it succeeds (the system may still be starting)."""
        for _ in range(60):
            if (done := await step()) is not None:
                return done
            await asyncio.sleep(0.5)
        msg = "the campaign's accounts could not be set up"
        raise RuntimeError(msg)

    @staticmethod
    def _workspace(account: Account, workspace_id: str) -> Workspace | None:
        """The workspace, unless it has been deleted meanwhile."""
        return next((w for w in (account.root, *account.subs) if w.id == workspace_id), None)
