"""Invitations: who was asked to join which workspace, and what became of it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Text, Uuid, bindparam, exists, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.permissions import Role
from services.identity.domain import Invitation, InvitationStatus, WorkspaceStatus
from services.identity.models import invitations, memberships, workspaces


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        workspace_id: uuid.UUID,
        email: str,
        role: Role,
        invited_by: str,
        expires_at: datetime,
    ) -> Invitation:
        values = {
            "id": uuid.uuid4(),
            "workspace_id": workspace_id,
            "email": email,
            "role": role.value,
            "status": InvitationStatus.PENDING.value,
            "invited_by": invited_by,
            "expires_at": expires_at,
        }
        row = (await self.session.execute(_ADD, values)).mappings().one()
        return _invitation(row)

    async def get(self, invitation_id: uuid.UUID, *, lock: bool = False) -> Invitation | None:
        query = select(invitations).where(invitations.c.id == invitation_id)
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else _invitation(row)

    async def standing_of(self, workspace_id: uuid.UUID, email: str) -> tuple[bool, bool]:
        """Whether someone joined the workspace with this email, and whether an
        invitation to it is pending there: one statement, built once, on the way of
        every invitation."""
        row = (
            await self.session.execute(_STANDING, {"workspace": workspace_id, "email": email})
        ).one()
        return bool(row[0]), bool(row[1])

    async def pending(self, workspace_id: uuid.UUID, *, now: datetime) -> list[Invitation]:
        """A workspace's invitations that are still open."""
        rows = (
            (
                await self.session.execute(
                    select(invitations)
                    .where(
                        invitations.c.workspace_id == workspace_id,
                        invitations.c.status == InvitationStatus.PENDING.value,
                        invitations.c.expires_at > now,
                    )
                    .order_by(invitations.c.created_at, invitations.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [_invitation(row) for row in rows]

    async def addressed_to(self, email: str, *, now: datetime) -> list[tuple[Invitation, str]]:
        """Open invitations to this email in live workspaces, with the workspace's name."""
        rows = (
            (
                await self.session.execute(
                    select(invitations, workspaces.c.name.label("workspace_name"))
                    .join(workspaces, workspaces.c.id == invitations.c.workspace_id)
                    .where(
                        invitations.c.email == email,
                        invitations.c.status == InvitationStatus.PENDING.value,
                        invitations.c.expires_at > now,
                        workspaces.c.status == WorkspaceStatus.ACTIVE.value,
                    )
                    .order_by(invitations.c.created_at, invitations.c.id)
                )
            )
            .mappings()
            .all()
        )
        return [(_invitation(row), row["workspace_name"]) for row in rows]

    async def set_status(self, invitation_id: uuid.UUID, status: InvitationStatus) -> None:
        await self.session.execute(
            update(invitations)
            .where(invitations.c.id == invitation_id)
            .values(status=status.value, responded_at=func.now())
        )

    async def due(
        self, *, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """(pool, workspace, invitation) of pending invitations past their expiry."""
        rows = (
            await self.session.execute(
                select(workspaces.c.billing_root_id, invitations.c.workspace_id, invitations.c.id)
                .join(workspaces, workspaces.c.id == invitations.c.workspace_id)
                .where(
                    invitations.c.status == InvitationStatus.PENDING.value,
                    invitations.c.expires_at <= now,
                )
                .order_by(invitations.c.expires_at)
                .limit(limit)
            )
        ).all()
        return [(row[0], row[1], row[2]) for row in rows]


_ADD = invitations.insert().returning(*invitations.c)
_WORKSPACE_ID = bindparam("workspace", type_=Uuid)
_EMAIL = bindparam("email", type_=Text)
_STANDING = select(
    exists().where(memberships.c.workspace_id == _WORKSPACE_ID, memberships.c.email == _EMAIL),
    exists().where(
        invitations.c.workspace_id == _WORKSPACE_ID,
        invitations.c.email == _EMAIL,
        invitations.c.status == InvitationStatus.PENDING.value,
    ),
)


def _invitation(row: RowMapping) -> Invitation:
    return Invitation(
        id=row["id"],
        workspace_id=row["workspace_id"],
        email=row["email"],
        role=Role(row["role"]),
        status=InvitationStatus(row["status"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )
