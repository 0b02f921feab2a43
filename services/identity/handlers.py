"""identity's use cases: one transaction each, events staged in the same one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts.events.identity import WorkspaceCreated
from services.identity.domain import FOUNDER_ROLE, Workspace, new_root_workspace
from services.identity.repository import IdentityRepository
from shared.errors import NotFoundError
from shared.principal import Principal, require_user, vouched_workspace
from shared.service import ServiceRuntime


@dataclass(frozen=True, slots=True)
class CreateRootWorkspace:
    founder: Principal
    name: str
    image_url: str | None


async def create_root_workspace(runtime: ServiceRuntime, command: CreateRootWorkspace) -> Workspace:
    founder_id = require_user(command.founder)
    async with runtime.database.transaction() as session:
        repository = IdentityRepository(session)
        await repository.remember_user(founder_id, command.founder.email)
        workspace = await repository.add_workspace(
            new_root_workspace(command.name, command.image_url)
        )
        await repository.add_membership(workspace.id, founder_id, FOUNDER_ROLE)
        await runtime.outbox.stage(
            session,
            WorkspaceCreated(
                id=workspace.id,
                parent_id=None,
                root_id=workspace.root_id,
                billing_root_id=workspace.id,
                depth=workspace.depth,
                name=workspace.name,
                image_url=workspace.image_url,
                billing_mode=workspace.billing_mode,
                api_access=workspace.api_access,
                strict_quota=workspace.strict_quota,
            ),
            root_id=workspace.root_id,
            workspace_id=workspace.id,
            actor=command.founder.actor,
        )
    return workspace


async def get_workspace(
    runtime: ServiceRuntime, viewer: Principal, workspace_id: uuid.UUID
) -> Workspace:
    vouched_workspace(viewer, workspace_id)
    async with runtime.database.transaction() as session:
        workspace = await IdentityRepository(session).workspace_of_member(
            workspace_id, require_user(viewer)
        )
    if workspace is None:
        msg = f"No workspace {workspace_id} that you can see."
        raise NotFoundError(msg)
    return workspace
