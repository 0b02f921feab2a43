"""identity's rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events.identity import BillingMode
from contracts.permissions import Permission, Role
from services.identity.domain import (
    Access,
    BelowUsageError,
    HasSubWorkspacesError,
    Invitation,
    InvitationStatus,
    Member,
    Occupancy,
    RootNotDeletableError,
    SeatLimitReachedError,
    SeatUsage,
    ensure_cap_covers,
    ensure_deletable,
    ensure_room,
    ensure_subtree_may_go,
    members_as_seen_here,
    new_root_workspace,
    new_sub_workspace,
)
from shared.errors import ForbiddenError, NotFoundError

ROOT = new_root_workspace("Acme", None)
CLIENT = new_sub_workspace(
    ROOT,
    name="Client",
    image_url=None,
    billing_mode=BillingMode.PARENT,
    api_access=False,
    strict_quota=True,
    max_depth=5,
)


def member(user_id: str, role: Role) -> Member:
    return Member(user_id=user_id, email=f"{user_id}@example.com", role=role, joined_at=None)


def test_a_super_admin_above_acts_here_as_super_admin_and_no_other_role_flows_down() -> None:
    from_above = Access.from_roles(CLIENT, {ROOT.id: Role.SUPER_ADMIN, CLIENT.id: Role.VIEWER})
    developer_above = Access.from_roles(CLIENT, {ROOT.id: Role.DEVELOPER})

    assert from_above.role is Role.SUPER_ADMIN
    assert from_above.inherited
    assert developer_above.role is None
    with pytest.raises(NotFoundError):
        developer_above.require(Permission.READ_WORKSPACE)


def test_a_viewer_sees_a_workspace_but_may_not_invite() -> None:
    viewer = Access.from_roles(ROOT, {ROOT.id: Role.VIEWER})

    viewer.require(Permission.READ_WORKSPACE)
    with pytest.raises(ForbiddenError):
        viewer.require(Permission.MANAGE_MEMBERS)


def test_an_api_key_reads_its_workspace_as_a_developer_and_manages_nothing() -> None:
    key = Access.of_api_key(CLIENT)

    key.require(Permission.READ_WORKSPACE)
    assert key.role is Role.DEVELOPER
    assert not key.inherited
    for permission in (Permission.MANAGE_MEMBERS, Permission.MANAGE_SUB_WORKSPACES):
        with pytest.raises(ForbiddenError):
            key.require(permission)
    with pytest.raises(ForbiddenError):
        key.require_ancestor_super_admin()


def test_the_members_list_shows_each_person_once_with_their_effective_role() -> None:
    direct = [member("ada", Role.CREATOR), member("bob", Role.SUPER_ADMIN)]
    above = [member("ada", Role.SUPER_ADMIN), member("cy", Role.SUPER_ADMIN)]

    listed = {m.user_id: (m.role, m.inherited) for m in members_as_seen_here(direct, above)}

    assert listed == {
        "ada": (Role.SUPER_ADMIN, True),
        "bob": (Role.SUPER_ADMIN, False),
        "cy": (Role.SUPER_ADMIN, True),
    }


def test_an_open_invitation_has_expired_the_moment_its_time_is_up() -> None:
    now = datetime.now(UTC)
    invitation = Invitation(
        id=uuid.uuid4(),
        workspace_id=ROOT.id,
        email="late@example.com",
        role=Role.VIEWER,
        status=InvitationStatus.PENDING,
        expires_at=now,
        created_at=None,
    )

    assert invitation.has_expired(now)
    assert not invitation.has_expired(now - timedelta(seconds=1))


def test_a_root_is_never_deleted_and_a_parent_goes_only_with_cascade() -> None:
    with pytest.raises(RootNotDeletableError):
        ensure_deletable(ROOT)
    with pytest.raises(HasSubWorkspacesError):
        ensure_subtree_may_go(subtree_size=2, cascade=False)
    ensure_deletable(CLIENT)
    ensure_subtree_may_go(subtree_size=2, cascade=True)


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def occupied(used: int, pending: int = 0, in_workspace: int = 0) -> Occupancy:
    return Occupancy(pool=SeatUsage(used=used, pending=pending), in_workspace=in_workspace, at=NOW)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (occupied(4), occupied(5)),  # the last free seat
        (occupied(5), occupied(5)),  # someone already counted (a member, a held seat)
        (occupied(4, 1), occupied(5, 0)),  # an acceptance of an invitation that held one
        (occupied(7), occupied(7)),  # a pool over its limit: nobody new
        (occupied(7), occupied(6, 1)),
    ],
)
def test_a_change_that_adds_nobody_past_the_limit_is_admitted(
    before: Occupancy, after: Occupancy
) -> None:
    ensure_room(before, after, limit=5, cap=None)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (occupied(5), occupied(6)),  # someone new in a full pool
        (occupied(3), occupied(3, 3)),  # three invitations where two fit
        (occupied(7), occupied(8)),  # a pool over its limit: someone new
    ],
)
def test_a_change_that_takes_the_pool_past_its_limit_is_refused(
    before: Occupancy, after: Occupancy
) -> None:
    with pytest.raises(SeatLimitReachedError):
        ensure_room(before, after, limit=5, cap=None)


def test_a_cap_holds_within_a_pool_with_room() -> None:
    ensure_room(occupied(1, in_workspace=1), occupied(2, in_workspace=2), limit=5, cap=2)
    ensure_room(occupied(2, in_workspace=3), occupied(2, in_workspace=3), limit=5, cap=2)
    with pytest.raises(SeatLimitReachedError, match="capped at 2"):
        ensure_room(occupied(2, in_workspace=2), occupied(2, in_workspace=3), limit=5, cap=2)


def test_a_cap_below_what_the_workspace_takes_is_refused() -> None:
    ensure_cap_covers(None, in_workspace=9)
    ensure_cap_covers(2, in_workspace=2)
    with pytest.raises(BelowUsageError):
        ensure_cap_covers(1, in_workspace=2)
