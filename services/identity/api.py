"""identity's HTTP API. An endpoint parses the request into a command (or names a
read), runs it in one unit of work and maps the domain value it returns to a response
schema. Writes run through `UnitsOfWork.run`, which honours `Idempotency-Key`; the
use cases authorize."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel

from services.identity import (
    deletion,
    housekeeping,
    invitations,
    members,
    queries,
    seat_pool,
    workspaces,
)
from services.identity.commands import (
    AcceptInvitation,
    DeclineInvitation,
    DeleteWorkspace,
    RemoveMember,
    RevokeInvitation,
)
from services.identity.domain import (
    AlreadyInvitedError,
    AlreadyMemberError,
    DepthLimitReachedError,
    HasSubWorkspacesError,
    IdentityPolicy,
    InvitationExpiredError,
    LastSuperAdminError,
    ParentBilledCannotHaveChildrenError,
    RootNotDeletableError,
    RootPaysForItselfError,
    SeatLimitReachedError,
    WorkspaceDeletingError,
    WorkspaceStatus,
)
from services.identity.schemas import (
    AccessResponse,
    CapSeatsRequest,
    ChangeRoleRequest,
    CreateSubWorkspaceRequest,
    CreateWorkspaceRequest,
    DeletionAccepted,
    InvitationResponse,
    InviteRequest,
    MemberResponse,
    MembershipResponse,
    MyInvitationResponse,
    MyWorkspaceResponse,
    SeatsResponse,
    SubWorkspaceCreatedResponse,
    UpdateWorkspaceRequest,
    WorkspaceResponse,
)
from shared.db import Database
from shared.errors import NotFoundError
from shared.fields import PlainText
from shared.idempotency import Idempotency
from shared.json_body import JsonBodyRoute
from shared.openapi import problems_for
from shared.pagination import DEFAULT_PAGE_SIZE, Cursor, Page, PageSize
from shared.principal import CurrentPrincipal
from shared.service import ServiceRuntime
from shared.unit_of_work import UnitOfWork, UnitsOfWork

router = APIRouter(prefix="/v1", route_class=JsonBodyRoute)
internal_router = APIRouter(
    prefix="/internal/v1", include_in_schema=False, route_class=JsonBodyRoute
)


def _units(request: Request) -> UnitsOfWork:
    return cast("ServiceRuntime", request.app.state.runtime).units_of_work


def _policy(request: Request) -> IdentityPolicy:
    return cast("IdentityPolicy", request.app.state.policy)


def _database(request: Request) -> Database:
    return cast("ServiceRuntime", request.app.state.runtime).database


Units = Annotated[UnitsOfWork, Depends(_units)]
Plain = Annotated[Database, Depends(_database)]
"""For the hot reads on a plain connection (`Database.plain`)."""
Policy = Annotated[IdentityPolicy, Depends(_policy)]


# Workspaces


@router.post(
    "/workspaces",
    status_code=201,
    response_model=WorkspaceResponse,
    tags=["workspaces"],
    summary="Create a root workspace; the caller becomes its first Super Admin",
)
async def create_workspace(
    body: CreateWorkspaceRequest, caller: CurrentPrincipal, units: Units, idempotency: Idempotency
) -> Response:
    command = body.command(caller)

    async def work(uow: UnitOfWork) -> BaseModel:
        return WorkspaceResponse.of(await workspaces.create_root_workspace(uow, command))

    return await units.run(work, actor=caller.actor, status_code=201, idempotency=idempotency)


@router.get("/workspaces", tags=["workspaces"], summary="The workspaces the caller is a member of")
async def list_my_workspaces(
    caller: CurrentPrincipal,
    units: Units,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[MyWorkspaceResponse]:
    async with units.begin(actor=caller.actor) as uow:
        found = await queries.my_workspaces(uow, caller, limit=limit, cursor=cursor)
    return Page[MyWorkspaceResponse](
        items=[MyWorkspaceResponse.of_member(workspace, role) for workspace, role in found.items],
        next_cursor=found.next_cursor,
    )


@router.get("/workspaces/{workspace_id}", tags=["workspaces"], summary="A workspace")
async def get_workspace(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, database: Plain
) -> WorkspaceResponse:
    async with database.plain() as connection:
        return WorkspaceResponse.of(await queries.workspace(connection, caller, workspace_id))


@router.patch(
    "/workspaces/{workspace_id}",
    status_code=200,
    response_model=WorkspaceResponse,
    tags=["workspaces"],
    summary="Rename a workspace, change its image or its settings",
    responses=problems_for(
        WorkspaceDeletingError, RootPaysForItselfError, HasSubWorkspacesError, SeatLimitReachedError
    ),
)
async def update_workspace(
    workspace_id: uuid.UUID,
    body: UpdateWorkspaceRequest,
    caller: CurrentPrincipal,
    units: Units,
    policy: Policy,
    idempotency: Idempotency,
) -> Response:
    command = body.command(caller, workspace_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        return WorkspaceResponse.of(await workspaces.update_workspace(uow, command, policy))

    return await units.run(work, actor=caller.actor, status_code=200, idempotency=idempotency)


@router.delete(
    "/workspaces/{workspace_id}",
    status_code=202,
    response_model=DeletionAccepted,
    tags=["workspaces"],
    summary="Delete a sub-workspace (with `cascade=true`, its sub-workspaces too)",
    responses=problems_for(RootNotDeletableError, HasSubWorkspacesError, WorkspaceDeletingError),
)
async def delete_workspace(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    background: BackgroundTasks,
    idempotency: Idempotency,
    cascade: Annotated[bool, Query()] = False,
) -> Response:
    """Answers at once; the deletion finishes in the background, deepest first."""
    command = DeleteWorkspace(caller=caller, workspace_id=workspace_id, cascade=cascade)
    doomed: list[uuid.UUID] = []

    async def work(uow: UnitOfWork) -> BaseModel:
        doomed.extend(await deletion.delete_workspace(uow, command))
        return DeletionAccepted(id=workspace_id, status=WorkspaceStatus.DELETING)

    accepted = await units.run(work, actor=caller.actor, status_code=202, idempotency=idempotency)
    background.add_task(housekeeping.finish_deletions, units, doomed, actor=caller.actor)
    return accepted


@router.post(
    "/workspaces/{workspace_id}/sub-workspaces",
    status_code=201,
    response_model=SubWorkspaceCreatedResponse,
    tags=["workspaces"],
    summary="Create a sub-workspace, inviting its first members in the same step",
    responses=problems_for(
        WorkspaceDeletingError,
        ParentBilledCannotHaveChildrenError,
        DepthLimitReachedError,
        SeatLimitReachedError,
        AlreadyInvitedError,
    ),
)
async def create_sub_workspace(
    workspace_id: uuid.UUID,
    body: CreateSubWorkspaceRequest,
    caller: CurrentPrincipal,
    units: Units,
    policy: Policy,
    idempotency: Idempotency,
) -> Response:
    command = body.command(caller, workspace_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        created = await workspaces.create_sub_workspace(uow, command, policy)
        return SubWorkspaceCreatedResponse.of_created(created.workspace, created.invitations)

    return await units.run(work, actor=caller.actor, status_code=201, idempotency=idempotency)


@router.get(
    "/workspaces/{workspace_id}/sub-workspaces",
    tags=["workspaces"],
    summary="The direct sub-workspaces of a workspace",
)
async def list_sub_workspaces(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[WorkspaceResponse]:
    async with units.begin(actor=caller.actor) as uow:
        found = await queries.sub_workspaces(uow, caller, workspace_id, limit=limit, cursor=cursor)
    return Page[WorkspaceResponse](
        items=[WorkspaceResponse.of(child) for child in found.items], next_cursor=found.next_cursor
    )


# Members


@router.get("/workspaces/{workspace_id}/members", tags=["members"], summary="Members")
async def list_members(
    workspace_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[MemberResponse]:
    async with units.begin(actor=caller.actor) as uow:
        found = await queries.members(uow, caller, workspace_id, limit=limit, cursor=cursor)
    return Page[MemberResponse](
        items=[MemberResponse.of(member) for member in found.items], next_cursor=found.next_cursor
    )


@router.patch(
    "/workspaces/{workspace_id}/members/{user_id}",
    status_code=200,
    response_model=MemberResponse,
    tags=["members"],
    summary="Change a role",
    responses=problems_for(NotFoundError, LastSuperAdminError),
)
async def change_role(
    workspace_id: uuid.UUID,
    user_id: PlainText,
    body: ChangeRoleRequest,
    caller: CurrentPrincipal,
    units: Units,
    idempotency: Idempotency,
) -> Response:
    command = body.command(caller, workspace_id, user_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        return MemberResponse.of(await members.change_role(uow, command))

    return await units.run(work, actor=caller.actor, status_code=200, idempotency=idempotency)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}",
    status_code=204,
    tags=["members"],
    summary="Remove a member, or leave",
    responses=problems_for(NotFoundError, LastSuperAdminError),
)
async def remove_member(
    workspace_id: uuid.UUID,
    user_id: PlainText,
    caller: CurrentPrincipal,
    units: Units,
    idempotency: Idempotency,
) -> Response:
    command = RemoveMember(caller=caller, workspace_id=workspace_id, user_id=user_id)

    async def work(uow: UnitOfWork) -> None:
        await members.remove_member(uow, command)

    return await units.run(work, actor=caller.actor, status_code=204, idempotency=idempotency)


@router.get("/workspaces/{workspace_id}/seats", tags=["members"], summary="The seat pool")
async def get_seats(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, units: Units, policy: Policy
) -> SeatsResponse:
    async with units.begin(actor=caller.actor) as uow:
        return SeatsResponse.of(await queries.seats(uow, caller, workspace_id, policy))


@router.put(
    "/workspaces/{workspace_id}/seats",
    status_code=200,
    response_model=SeatsResponse,
    tags=["members"],
    summary="Cap a sub-workspace's seats within its pool (a Super Admin from above)",
)
async def cap_seats(
    workspace_id: uuid.UUID,
    body: CapSeatsRequest,
    caller: CurrentPrincipal,
    units: Units,
    policy: Policy,
    idempotency: Idempotency,
) -> Response:
    """Holds from this answer on (set under the seat pool's lock); below what the
    workspace takes already: 409 `below-usage`. Replaces `seats` in `PUT …/allocations`."""
    command = body.command(caller, workspace_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        return SeatsResponse.of(await seat_pool.cap_seats(uow, command, policy))

    return await units.run(work, actor=caller.actor, status_code=200, idempotency=idempotency)


# Invitations


@router.post(
    "/workspaces/{workspace_id}/invitations",
    status_code=201,
    response_model=InvitationResponse,
    tags=["invitations"],
    summary="Invite someone by email; the invitation holds a seat",
    responses=problems_for(
        WorkspaceDeletingError, SeatLimitReachedError, AlreadyMemberError, AlreadyInvitedError
    ),
)
async def invite(
    workspace_id: uuid.UUID,
    body: InviteRequest,
    caller: CurrentPrincipal,
    units: Units,
    policy: Policy,
    idempotency: Idempotency,
) -> Response:
    command = body.command(caller, workspace_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        return InvitationResponse.of(await invitations.invite_member(uow, command, policy))

    return await units.run(work, actor=caller.actor, status_code=201, idempotency=idempotency)


@router.get(
    "/workspaces/{workspace_id}/invitations",
    tags=["invitations"],
    summary="Pending invitations of a workspace",
)
async def list_pending_invitations(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, units: Units
) -> Page[InvitationResponse]:
    async with units.begin(actor=caller.actor) as uow:
        pending = await queries.pending_invitations(uow, caller, workspace_id)
    return Page[InvitationResponse](
        items=[InvitationResponse.of(invitation) for invitation in pending], next_cursor=None
    )


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}",
    status_code=204,
    tags=["invitations"],
    summary="Revoke a pending invitation; its seat frees up",
    responses=problems_for(NotFoundError),
)
async def revoke_invitation(
    workspace_id: uuid.UUID,
    invitation_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    idempotency: Idempotency,
) -> Response:
    command = RevokeInvitation(
        caller=caller, workspace_id=workspace_id, invitation_id=invitation_id
    )

    async def work(uow: UnitOfWork) -> None:
        await invitations.revoke_invitation(uow, command)

    return await units.run(work, actor=caller.actor, status_code=204, idempotency=idempotency)


@router.get(
    "/invitations", tags=["invitations"], summary="Invitations addressed to the caller's email"
)
async def list_my_invitations(caller: CurrentPrincipal, units: Units) -> Page[MyInvitationResponse]:
    async with units.begin(actor=caller.actor) as uow:
        found = await queries.my_invitations(uow, caller)
    return Page[MyInvitationResponse](
        items=[MyInvitationResponse.of_addressed(invitation, name) for invitation, name in found],
        next_cursor=None,
    )


@router.post(
    "/invitations/{invitation_id}/accept",
    status_code=200,
    response_model=MembershipResponse,
    tags=["invitations"],
    summary="Accept an invitation",
    responses=problems_for(NotFoundError, InvitationExpiredError),
)
async def accept_invitation(
    invitation_id: uuid.UUID,
    caller: CurrentPrincipal,
    units: Units,
    policy: Policy,
    idempotency: Idempotency,
) -> Response:
    command = AcceptInvitation(caller=caller, invitation_id=invitation_id)

    async def work(uow: UnitOfWork) -> BaseModel:
        return MembershipResponse.of(await invitations.accept_invitation(uow, command, policy))

    return await units.run(work, actor=caller.actor, status_code=200, idempotency=idempotency)


@router.post(
    "/invitations/{invitation_id}/decline",
    status_code=204,
    tags=["invitations"],
    summary="Decline an invitation",
    responses=problems_for(NotFoundError, InvitationExpiredError),
)
async def decline_invitation(
    invitation_id: uuid.UUID, caller: CurrentPrincipal, units: Units, idempotency: Idempotency
) -> Response:
    command = DeclineInvitation(caller=caller, invitation_id=invitation_id)

    async def work(uow: UnitOfWork) -> None:
        await invitations.decline_invitation(uow, command)

    return await units.run(work, actor=caller.actor, status_code=204, idempotency=idempotency)


# For the gateway


@internal_router.get("/workspaces/{workspace_id}/access")
async def get_access(
    workspace_id: uuid.UUID, caller: CurrentPrincipal, database: Plain
) -> AccessResponse:
    """The caller's standing in a workspace, straight from identity's own records: the
    gateway asks when its copy (built from events) has not caught up yet."""
    async with database.plain() as connection:
        return AccessResponse.of(await queries.standing(connection, caller, workspace_id))
