"""Before answering 404, the gateway asks identity: a caller who has just created or
joined a workspace must not be told it does not exist because an event is late."""

from __future__ import annotations

import uuid

import pytest

from contracts.permissions import Role
from services.gateway.access import (
    NEGATIVE_SECONDS,
    PROVISIONAL_SECONDS,
    AccessResolver,
    IdentityUnavailableError,
)
from services.gateway.authz import Access
from services.gateway.projections import AccessProjection, WorkspaceNode, WorkspaceStatus
from shared.principal import Principal

from .conftest import InProcessGateway
from .support import StubUpstream, bearer

ANN = Principal(user_id="ann", email="ann@example.test", email_verified=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Identity:
    """identity's answers, counted."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, uuid.UUID], Access] = {}
        self.asked = 0
        self.failing = False

    async def __call__(self, caller: Principal, workspace_id: uuid.UUID) -> Access | None:
        self.asked += 1
        if self.failing:
            raise ConnectionError
        assert caller.user_id is not None
        return self.answers.get((caller.user_id, workspace_id))


def resolver() -> tuple[AccessResolver, Identity, Clock]:
    identity, clock = Identity(), Clock()
    return AccessResolver(AccessProjection(), identity, clock=clock), identity, clock


async def test_a_workspace_the_projection_does_not_know_yet_is_granted_on_identitys_word() -> None:
    access, identity, _ = resolver()
    workspace = uuid.uuid4()
    identity.answers[("ann", workspace)] = Access(workspace, Role.SUPER_ADMIN, False)

    assert await access.access(ANN, workspace) == Access(workspace, Role.SUPER_ADMIN, False)
    assert await access.access(ANN, workspace) == Access(workspace, Role.SUPER_ADMIN, False)
    assert identity.asked == 1


async def test_once_the_change_reaches_the_projection_it_decides_again() -> None:
    access, identity, _ = resolver()
    workspace = uuid.uuid4()
    identity.answers[("ann", workspace)] = Access(workspace, Role.SUPER_ADMIN, False)
    await access.access(ANN, workspace)

    access.membership_loaded(workspace, "ann", Role.SUPER_ADMIN)
    access.membership_loaded(workspace, "ann", None)

    assert await access.access(ANN, workspace) is not None  # identity still says yes
    del identity.answers[("ann", workspace)]
    access.membership_loaded(workspace, "ann", None)
    assert await access.access(ANN, workspace) is None


async def test_a_removal_ends_a_provisional_grant_at_once() -> None:
    access, identity, _ = resolver()
    workspace = uuid.uuid4()
    identity.answers[("ann", workspace)] = Access(workspace, Role.VIEWER, False)
    assert await access.access(ANN, workspace) is not None

    del identity.answers[("ann", workspace)]
    access.membership_loaded(workspace, "ann", None)

    assert await access.access(ANN, workspace) is None


async def test_an_answer_overtaken_by_a_change_is_not_remembered() -> None:
    access, identity, _ = resolver()
    workspace = uuid.uuid4()
    identity.answers[("ann", workspace)] = Access(workspace, Role.VIEWER, False)
    asking = identity.__call__

    async def overtaken(caller: Principal, asked: uuid.UUID) -> Access | None:
        answer = await asking(caller, asked)
        access.membership_loaded(asked, "ann", None)  # the removal arrives meanwhile
        return answer

    access.ask_identity = overtaken
    assert await access.access(ANN, workspace) is not None

    del identity.answers[("ann", workspace)]
    access.ask_identity = identity
    assert await access.access(ANN, workspace) is None


async def test_a_provisional_grant_lasts_a_bounded_time() -> None:
    access, identity, clock = resolver()
    workspace = uuid.uuid4()
    identity.answers[("ann", workspace)] = Access(workspace, Role.VIEWER, False)
    await access.access(ANN, workspace)

    clock.now += PROVISIONAL_SECONDS + 0.001
    del identity.answers[("ann", workspace)]

    assert await access.access(ANN, workspace) is None


async def test_no_is_remembered_only_for_a_moment() -> None:
    access, identity, clock = resolver()
    workspace = uuid.uuid4()
    assert await access.access(ANN, workspace) is None
    assert await access.access(ANN, workspace) is None
    assert identity.asked == 1

    identity.answers[("ann", workspace)] = Access(workspace, Role.SUPER_ADMIN, False)
    clock.now += NEGATIVE_SECONDS + 0.001

    assert await access.access(ANN, workspace) is not None
    assert NEGATIVE_SECONDS <= 0.5


async def test_an_unreachable_identity_is_said_so_and_asked_again() -> None:
    access, identity, _ = resolver()
    identity.failing = True
    workspace = uuid.uuid4()

    for _ in range(2):
        with pytest.raises(IdentityUnavailableError):
            await access.access(ANN, workspace)
    assert identity.asked == 2
    identity.failing = False
    identity.answers[("ann", workspace)] = Access(workspace, Role.DEVELOPER, False)
    assert await access.access(ANN, workspace) == Access(workspace, Role.DEVELOPER, False)


async def test_identity_is_not_asked_about_a_workspace_known_to_be_deleted() -> None:
    access, identity, _ = resolver()
    workspace = uuid.uuid4()
    access.workspace_loaded(
        workspace, WorkspaceNode(workspace, None, workspace, True, WorkspaceStatus.DELETED)
    )

    assert await access.access(ANN, workspace) is None
    assert identity.asked == 0


async def test_through_the_gateway_a_just_created_workspace_is_not_a_404(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    workspace = str(uuid.uuid4())
    stub.access_answers[("ann", workspace)] = {
        "workspace_id": workspace,
        "parent_id": None,
        "root_id": workspace,
        "role": "super_admin",
        "ancestor_super_admin": False,
        "api_access": True,
        "status": "active",
    }

    response = await in_process.client.get(f"/v1/workspaces/{workspace}", headers=bearer("ann"))

    assert response.status_code == 200
    [(asked_about, asked_as)] = stub.access_checks
    assert asked_about == workspace
    assert asked_as.user_id == "ann"
    assert str(asked_as.workspace_id) == workspace
    [forwarded] = stub.forwarded
    assert forwarded.principal.role is Role.SUPER_ADMIN


async def test_through_the_gateway_identitys_no_is_a_404(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    response = await in_process.client.get(
        f"/v1/workspaces/{uuid.uuid4()}/members", headers=bearer("ann")
    )

    assert response.status_code == 404
    assert len(stub.access_checks) == 1
    assert stub.forwarded == []


async def test_through_the_gateway_an_identity_that_cannot_answer_is_a_503_not_a_404(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    stub.access_unavailable = True

    response = await in_process.client.get(
        f"/v1/workspaces/{uuid.uuid4()}/members", headers=bearer("ann")
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert len(stub.access_checks) == 1
    assert stub.forwarded == []
