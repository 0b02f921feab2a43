"""Seat pools against a model of them: a hypothesis state machine drives identity (its
app on the test session's PostgreSQL, billing's limits delivered to its consumer as
Kafka would) through invitations to a root and its two sub-workspaces, acceptances,
declines, revocations, removals, people leaving, a sub-workspace's cap, billing
changing a pool's limit and a sub-workspace moving between `parent` and `own` billing,
and after every step compares what identity shows with a model that follows DESIGN.md
("Seats"):

- a billing root's pool holds the people who are members of a workspace in it (each
  counted once however many of its workspaces they are in) and the emails that pending
  invitations hold (unless that person is a member there already);
- a change that adds to the pool is refused (409 `seat-limit-reached`) when it leaves
  the pool fuller than before and past its limit, or a capped workspace fuller than
  before and past its cap; nothing else refuses it;
- inviting a member is 409 `already-member`, inviting someone invited already is 409
  `already-invited`; a cap below what the workspace takes is 409 `below-usage`; the
  last Super Admin of the root cannot be removed (409 `last-super-admin`).

Every step must give the status (and problem type) the model predicts; after every
step `GET …/seats` of each workspace shows the model's pool, limit, used, pending and
cap; a pool is never fuller than its limit, or than it was when its limit was set
below what it held (only refusals happen past it); and each pool's kept count is the
pool counted from its rows.

A longer run (see `tests/stateful.py`):

    ATRIUM_MODEL_EXAMPLES=200 ATRIUM_MODEL_STEPS=60 .venv/bin/pytest -p no:cacheprovider \
        tests/integration/identity/test_seat_model.py -q
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import httpx
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.service import ServiceRuntime
from shared.settings import Settings
from tests.stateful import LoopDrivenMachine, model_settings, run_machine, within_time

from .conftest import counts, create_root, create_sub, invite, person, set_seat_limit

pytestmark = pytest.mark.integration

T = TypeVar("T")

ROOT = 0
PLACES = (0, 1, 2)
"""The root and two sub-workspaces, `parent`-billed to begin with."""
PEOPLE = 4
ADMIN = -1
"""The root's founder, its one Super Admin: a member of the root."""

places = st.sampled_from(PLACES)
subs = st.sampled_from(PLACES[1:])
people = st.integers(0, PEOPLE - 1)
roles = st.sampled_from(["creator", "viewer"])
picks = st.integers(0, 1_000)
"""Which one of what there is to pick from (modulo how many there are)."""


@dataclass
class Invitation:
    id: str
    place: int
    who: int
    status: str = "pending"


@dataclass
class Seats:
    """The model: who is a member where, the invitations, who pays for each workspace,
    each pool's limit and each workspace's cap."""

    default_limit: int
    members: set[tuple[int, int]] = field(default_factory=lambda: {(ROOT, ADMIN)})
    invitations: list[Invitation] = field(default_factory=list)
    own: set[int] = field(default_factory=set)
    """The sub-workspaces that pay for themselves (billing roots of their own pool)."""
    limits: dict[int, int] = field(default_factory=dict)
    caps: dict[int, int | None] = field(default_factory=lambda: dict.fromkeys(PLACES))
    ceilings: dict[int, int] = field(default_factory=dict)
    """How full each pool may be: its limit, or what it held when its limit was set
    below that, as long as it has not emptied below it since."""

    def __post_init__(self) -> None:
        self.limits[ROOT] = self.ceilings[ROOT] = self.default_limit

    def pool_of(self, place: int) -> int:
        return place if place in self.own else ROOT

    def pools(self) -> set[int]:
        return {self.pool_of(place) for place in PLACES}

    def usage(self, pool: int) -> tuple[int, int]:
        """(used, pending) as the pool counts them."""
        places = {place for place in PLACES if self.pool_of(place) == pool}
        seated = {who for place, who in self.members if place in places}
        held = {
            invitation.who
            for invitation in self.pending()
            if invitation.place in places and invitation.who not in seated
        }
        return len(seated), len(held)

    def taken(self, pool: int) -> int:
        return sum(self.usage(pool))

    def in_workspace(self, place: int) -> int:
        """Its members and its pending invitations: what a cap limits."""
        return sum(1 for at, _ in self.members if at == place) + sum(
            1 for invitation in self.pending() if invitation.place == place
        )

    def pending(self) -> list[Invitation]:
        return [invitation for invitation in self.invitations if invitation.status == "pending"]

    def pending_to(self, place: int, who: int) -> Invitation | None:
        return next(
            (i for i in self.pending() if (i.place, i.who) == (place, who)),
            None,
        )

    def refuses_to_add(self, place: int, before_pool: int, before_workspace: int) -> bool:
        """A change just made in `place` left its pool fuller than `before_pool` and past
        its limit, or the workspace fuller than `before_workspace` and past its cap."""
        pool = self.pool_of(place)
        cap = self.caps[place]
        return self.taken(pool) > max(before_pool, self.limits[pool]) or (
            cap is not None and self.in_workspace(place) > max(before_workspace, cap)
        )

    def invite(self, place: int, who: int, invitation_id: str) -> str | None:
        """Invite `who` to `place` as identity should; the problem type that refuses it."""
        if (place, who) in self.members:
            return "already-member"
        if self.pending_to(place, who) is not None:
            return "already-invited"
        before = self.taken(self.pool_of(place)), self.in_workspace(place)
        invitation = Invitation(invitation_id, place, who)
        self.invitations.append(invitation)
        if self.refuses_to_add(place, *before):
            self.invitations.remove(invitation)
            return "seat-limit-reached"
        return None

    def accept(self, invitation: Invitation) -> str | None:
        place = invitation.place
        before = self.taken(self.pool_of(place)), self.in_workspace(place)
        invitation.status = "accepted"
        self.members.add((place, invitation.who))
        if self.refuses_to_add(place, *before):
            invitation.status = "pending"
            self.members.discard((place, invitation.who))
            return "seat-limit-reached"
        return None

    def switch_who_pays(self, place: int) -> str | None:
        """A sub-workspace starts paying for itself (its own pool, on the default limit)
        or goes back to its parent's bill; its people must fit in the pool they move
        to, as full as it was or within its limit."""
        moving_out = place not in self.own
        to = place if moving_out else ROOT
        before = self.taken(to) if to in self.pools() else 0
        self.own.symmetric_difference_update({place})
        if moving_out:
            self.limits[place] = self.ceilings[place] = self.default_limit
        if self.taken(to) > max(before, self.limits[to]):
            self.own.symmetric_difference_update({place})
            return "seat-limit-reached"
        return None

    def settle_ceilings(self) -> None:
        for pool in self.pools():
            self.ceilings[pool] = max(self.limits[pool], min(self.ceilings[pool], self.taken(pool)))


def pick_one(among: Sequence[T], pick: int) -> T:
    return among[pick % len(among)]


class SeatMachine(LoopDrivenMachine):
    client: ClassVar[httpx.AsyncClient]
    identity: ClassVar[ServiceRuntime]
    admin_engine: ClassVar[AsyncEngine]
    default_limit: ClassVar[int]

    def __init__(self) -> None:
        super().__init__()
        self.admin = person("admin")
        self.people = [person(f"p{number}") for number in range(PEOPLE)]
        root_id = self.wait_for(create_root(self.client, self.admin))
        self.ids = [root_id]
        for name in ("S1", "S2"):
            created = self.wait_for(create_sub(self.client, self.admin, root_id, name=name))
            assert created.status_code == 201, created.text
            self.ids.append(created.json()["id"])
        self.model = Seats(self.default_limit)
        self.opened_pools = {ROOT}
        """Every workspace that has had a pool: a pool left behind must count nobody."""

    # Steps ----------------------------------------------------------------------------

    @rule(place=places, who=people, role=roles)
    def invite(self, place: int, who: int, role: str) -> None:
        response = self.wait_for(
            invite(self.client, self.admin, self.ids[place], self.people[who], role)
        )
        refused = self.model.invite(place, who, response.json().get("id", ""))
        self.expect(response, 201, refused)

    @precondition(lambda self: self.model.pending())
    @rule(pick=picks)
    def accept(self, pick: int) -> None:
        invitation = pick_one(self.model.pending(), pick)
        response = self.answer(invitation, "accept")
        self.expect(response, 200, self.model.accept(invitation))

    @rule(place=places, who=people, role=roles)
    def join(self, place: int, who: int, role: str) -> None:
        """Invited, and accepting at once."""
        self.invite(place, who, role)
        invitation = self.model.pending_to(place, who)
        if invitation is not None:
            self.accept(pick=self.model.pending().index(invitation))

    @precondition(lambda self: self.model.pending())
    @rule(pick=picks)
    def decline(self, pick: int) -> None:
        invitation = pick_one(self.model.pending(), pick)
        self.expect(self.answer(invitation, "decline"), 204)
        invitation.status = "declined"

    @precondition(lambda self: self.model.pending())
    @rule(pick=picks)
    def revoke(self, pick: int) -> None:
        invitation = pick_one(self.model.pending(), pick)
        response = self.wait_for(
            self.client.delete(
                f"/v1/workspaces/{self.ids[invitation.place]}/invitations/{invitation.id}",
                auth=self.admin.auth,
            )
        )
        self.expect(response, 204)
        invitation.status = "revoked"

    @precondition(lambda self: any(i.status != "pending" for i in self.model.invitations))
    @rule(pick=picks, answer=st.sampled_from(["accept", "decline"]))
    def answer_an_invitation_no_longer_pending(self, pick: int, answer: str) -> None:
        ended = [i for i in self.model.invitations if i.status != "pending"]
        response = self.answer(pick_one(ended, pick), answer)
        assert response.status_code == 404, response.text

    @rule(place=places, who=st.integers(ADMIN, PEOPLE - 1))
    def remove(self, place: int, who: int) -> None:
        """The admin removes someone (themself too: the root's last Super Admin stays)."""
        removed = self.admin if who == ADMIN else self.people[who]
        response = self.wait_for(
            self.client.delete(
                f"/v1/workspaces/{self.ids[place]}/members/{removed.user_id}",
                auth=self.admin.auth,
            )
        )
        if (place, who) == (ROOT, ADMIN):
            self.expect(response, 204, "last-super-admin")
        elif (place, who) in self.model.members:
            self.expect(response, 204)
            self.model.members.discard((place, who))
        else:
            assert response.status_code == 404, response.text

    @precondition(lambda self: len(self.model.members) > 1)
    @rule(pick=picks)
    def leave(self, pick: int) -> None:
        place, who = pick_one(sorted(self.model.members - {(ROOT, ADMIN)}), pick)
        leaving = self.people[who]
        response = self.wait_for(
            self.client.delete(
                f"/v1/workspaces/{self.ids[place]}/members/{leaving.user_id}", auth=leaving.auth
            )
        )
        self.expect(response, 204)
        self.model.members.discard((place, who))

    @rule(place=subs, cap=st.none() | st.integers(0, 4))
    def cap_seats(self, place: int, cap: int | None) -> None:
        response = self.wait_for(
            self.client.put(
                f"/v1/workspaces/{self.ids[place]}/seats", json={"cap": cap}, auth=self.admin.auth
            )
        )
        below = cap is not None and cap < self.model.in_workspace(place)
        self.expect(response, 200, "below-usage" if below else None)
        if not below:
            self.model.caps[place] = cap
            assert response.json()["cap"] == cap

    @rule(place=places, limit=st.integers(0, 7))
    def billing_sets_the_limit(self, place: int, limit: int) -> None:
        pool = self.model.pool_of(place)
        self.wait_for(set_seat_limit(self.identity, self.ids[pool], limit, root_id=self.ids[ROOT]))
        self.model.limits[pool] = limit
        self.model.ceilings[pool] = max(limit, self.model.taken(pool))

    @rule(place=subs)
    def switch_who_pays(self, place: int) -> None:
        model = self.model
        moving_out = place not in model.own
        response = self.wait_for(
            self.client.patch(
                f"/v1/workspaces/{self.ids[place]}",
                json={"billing_mode": "own" if moving_out else "parent"},
                auth=self.admin.auth,
            )
        )
        refused = model.switch_who_pays(place)
        if refused is None and moving_out:
            self.opened_pools.add(place)
        self.expect(response, 200, refused)

    # Checks after every step ----------------------------------------------------------

    @invariant()
    def every_workspace_shows_the_models_pool(self) -> None:
        model = self.model
        model.settle_ceilings()
        for place in PLACES:
            pool = model.pool_of(place)
            response = self.wait_for(
                self.client.get(f"/v1/workspaces/{self.ids[place]}/seats", auth=self.admin.auth)
            )
            assert response.status_code == 200, response.text
            shown = response.json()
            used, pending = model.usage(pool)
            assert (shown["pool_root_id"], shown["limit"], shown["used"], shown["pending"]) == (
                self.ids[pool],
                model.limits[pool],
                used,
                pending,
            ), place
            assert shown["cap"] == model.caps[place]
            assert shown["used"] + shown["pending"] <= model.ceilings[pool]

    @invariant()
    def each_pools_kept_count_is_its_recount(self) -> None:
        for pool in self.opened_pools:
            found = self.wait_for(counts(self.admin_engine, self.ids[pool]))
            assert (found.kept_used, found.kept_held) == (found.used, found.held), pool
            expected = self.model.usage(pool) if pool in self.model.pools() else (0, 0)
            assert (found.used, found.pending) == expected

    # ----------------------------------------------------------------------------------

    def answer(self, invitation: Invitation, answer: str) -> httpx.Response:
        invitee = self.people[invitation.who]
        return self.wait_for(
            self.client.post(f"/v1/invitations/{invitation.id}/{answer}", auth=invitee.auth)
        )

    @staticmethod
    def expect(response: httpx.Response, status: int, refused: str | None = None) -> None:
        """The answer is `status`, or the 409 problem `refused` when the model says so."""
        if refused is None:
            assert response.status_code == status, response.text
        else:
            assert response.status_code == 409, response.text
            assert response.json()["type"] == refused


@within_time
async def test_seat_pools_do_what_their_model_says(
    client: httpx.AsyncClient,
    identity: ServiceRuntime,
    admin_engine: AsyncEngine,
    settings: Settings,
) -> None:
    await run_machine(
        SeatMachine,
        model_settings(examples=5, steps=30),
        client=client,
        identity=identity,
        admin_engine=admin_engine,
        default_limit=settings.default_plan_seats,
    )
