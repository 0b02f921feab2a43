"""The in-memory copy is replaced by the rows it is given, and a notification names
exactly the row that changed."""

from __future__ import annotations

import uuid

import pytest

from contracts.permissions import Role
from services.gateway.projections import AccessProjection, Membership, WorkspaceNode
from services.gateway.repository import AccessChange

ROOT = uuid.uuid4()


def test_a_reload_forgets_what_the_tables_no_longer_hold() -> None:
    projection = AccessProjection()
    gone = uuid.uuid4()
    projection.load(
        [WorkspaceNode(ROOT, None, ROOT, api_access=True), WorkspaceNode(gone, ROOT, ROOT, True)],
        [Membership(ROOT, "ann", Role.SUPER_ADMIN), Membership(ROOT, "bob", Role.VIEWER)],
    )

    projection.load(
        [WorkspaceNode(ROOT, None, ROOT, api_access=True)],
        [Membership(ROOT, "ann", Role.SUPER_ADMIN)],
    )

    assert gone not in projection.workspaces
    assert projection.role_of("bob", ROOT) is None
    assert projection.role_of("ann", ROOT) is Role.SUPER_ADMIN


def test_a_workspace_without_a_row_leaves_the_copy() -> None:
    projection = AccessProjection()
    projection.put_workspace(WorkspaceNode(ROOT, None, ROOT, api_access=True))
    projection.remove_workspace(ROOT)
    assert ROOT not in projection.workspaces


@pytest.mark.parametrize(
    "change",
    [
        AccessChange(ROOT),
        AccessChange(ROOT, "ann"),
        AccessChange(ROOT, "auth0|ann smith"),
        AccessChange(ROOT, ""),
    ],
)
def test_a_notification_names_the_row_that_changed(change: AccessChange) -> None:
    assert AccessChange.from_payload(change.payload()) == change


@pytest.mark.parametrize("payload", ["", "not-a-workspace", "not-a-workspace ann"])
def test_a_notification_that_names_no_workspace_is_refused(payload: str) -> None:
    with pytest.raises(ValueError, match="UUID"):
        AccessChange.from_payload(payload)
