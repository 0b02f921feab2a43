"""A caller's effective role: their own, or Super Admin when they are a Super Admin of
any ancestor; never anything from a descendant or a sibling."""

from __future__ import annotations

import uuid

import pytest

from contracts.permissions import Permission, Role
from services.gateway.authz import Access, effective_access, refusal
from services.gateway.projections import (
    AccessProjection,
    Membership,
    WorkspaceNode,
    WorkspaceStatus,
)
from services.gateway.routes import Route
from shared.settings import ServiceName

ROOT, CHILD, GRANDCHILD, SIBLING = (uuid.uuid4() for _ in range(4))


def tree(*memberships: Membership) -> AccessProjection:
    projection = AccessProjection()
    projection.load(
        [
            WorkspaceNode(ROOT, None, ROOT, api_access=True),
            WorkspaceNode(CHILD, ROOT, ROOT, api_access=True),
            WorkspaceNode(GRANDCHILD, CHILD, ROOT, api_access=False),
            WorkspaceNode(SIBLING, ROOT, ROOT, api_access=True),
        ],
        memberships,
    )
    return projection


def test_a_member_acts_with_their_own_role() -> None:
    projection = tree(Membership(CHILD, "ann", Role.CREATOR))
    assert effective_access(projection, "ann", CHILD) == Access(CHILD, Role.CREATOR, False)


def test_a_super_admin_of_an_ancestor_is_super_admin_all_the_way_down() -> None:
    projection = tree(Membership(ROOT, "ann", Role.SUPER_ADMIN))
    assert effective_access(projection, "ann", CHILD) == Access(CHILD, Role.SUPER_ADMIN, True)
    assert effective_access(projection, "ann", GRANDCHILD) == Access(
        GRANDCHILD, Role.SUPER_ADMIN, True
    )


def test_the_higher_of_a_direct_role_and_a_super_admin_above_wins() -> None:
    projection = tree(
        Membership(ROOT, "ann", Role.SUPER_ADMIN), Membership(CHILD, "ann", Role.VIEWER)
    )
    assert effective_access(projection, "ann", CHILD) == Access(CHILD, Role.SUPER_ADMIN, True)


def test_a_super_admin_of_the_workspace_itself_does_not_act_from_above() -> None:
    projection = tree(Membership(CHILD, "ann", Role.SUPER_ADMIN))
    assert effective_access(projection, "ann", CHILD) == Access(CHILD, Role.SUPER_ADMIN, False)


def test_a_lesser_role_above_gives_nothing_below() -> None:
    projection = tree(Membership(ROOT, "ann", Role.DEVELOPER))
    assert effective_access(projection, "ann", CHILD) is None


@pytest.mark.parametrize("elsewhere", [CHILD, SIBLING, GRANDCHILD])
def test_rights_never_flow_up_or_sideways(elsewhere: uuid.UUID) -> None:
    projection = tree(Membership(elsewhere, "ann", Role.SUPER_ADMIN))
    assert effective_access(projection, "ann", ROOT) is None
    if elsewhere != SIBLING:
        assert effective_access(projection, "ann", SIBLING) is None


def test_a_deleted_workspace_is_nobodys() -> None:
    projection = tree(Membership(CHILD, "ann", Role.SUPER_ADMIN))
    projection.put_workspace(WorkspaceNode(CHILD, ROOT, ROOT, True, WorkspaceStatus.DELETED))
    assert effective_access(projection, "ann", CHILD) is None
    assert projection.role_of("ann", CHILD) is None


def test_a_workspace_being_deleted_keeps_its_members_and_says_so() -> None:
    projection = tree(Membership(CHILD, "ann", Role.VIEWER))
    projection.put_workspace(WorkspaceNode(CHILD, ROOT, ROOT, True, WorkspaceStatus.DELETING))
    access = effective_access(projection, "ann", CHILD)
    assert access is not None
    assert access.status is WorkspaceStatus.DELETING


def test_a_membership_that_arrived_before_its_workspace_counts_already() -> None:
    later = uuid.uuid4()
    projection = tree(Membership(later, "ann", Role.DEVELOPER))
    assert effective_access(projection, "ann", later) == Access(later, Role.DEVELOPER, False)
    projection.put_workspace(WorkspaceNode(later, CHILD, ROOT, api_access=True))
    assert effective_access(projection, "ann", later) == Access(later, Role.DEVELOPER, False)


def test_a_removed_member_has_no_access() -> None:
    projection = tree(Membership(CHILD, "ann", Role.VIEWER))
    projection.remove_member(CHILD, "ann")
    assert effective_access(projection, "ann", CHILD) is None


READ = Route(
    "GET", "/v1/workspaces/{workspace_id}", ServiceName.IDENTITY, Permission.READ_WORKSPACE
)
INVITE = Route(
    "POST",
    "/v1/workspaces/{workspace_id}/invitations",
    ServiceName.IDENTITY,
    Permission.MANAGE_MEMBERS,
)


def test_no_place_in_the_workspace_is_a_404_and_a_weak_role_a_403() -> None:
    viewer = Access(CHILD, Role.VIEWER, False)
    nobody = refusal(READ, CHILD, None)
    assert nobody is not None
    assert nobody.problem.status == 404
    weak = refusal(INVITE, CHILD, viewer)
    assert weak is not None
    assert weak.problem.status == 403
    assert refusal(READ, CHILD, viewer) is None


def test_a_workspace_being_deleted_can_be_read_but_not_changed() -> None:
    deleting = Access(CHILD, Role.SUPER_ADMIN, False, WorkspaceStatus.DELETING)
    assert refusal(READ, CHILD, deleting) is None
    changing = refusal(INVITE, CHILD, deleting)
    assert changing is not None
    assert (changing.problem.status, changing.problem.slug) == (409, "workspace-deleting")
