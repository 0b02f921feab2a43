"""A person's standing in a workspace: the workspace and their roles on its path, in one
statement on a plain connection (`shared.db.Database.plain`). It is the read behind
every `GET /v1/workspaces/{id}` and every access check the gateway makes, so it skips
the unit of work's session: one prepared statement, one round trip, its own snapshot."""

from __future__ import annotations

import uuid

import asyncpg

from contracts.permissions import Role
from services.identity.domain import Workspace
from services.identity.repository.workspaces import workspace_of_row

_STANDING = """
SELECT w.*, held.workspace_ids AS held_workspace_ids, held.roles AS held_roles
FROM workspaces AS w
LEFT JOIN LATERAL (
    SELECT array_agg(m.workspace_id) AS workspace_ids, array_agg(m.role) AS roles
    FROM memberships AS m
    WHERE m.user_id = $2 AND m.workspace_id = ANY (w.path)
) AS held ON true
WHERE w.id = $1
"""
# Unqualified tables: the connection's search_path is identity's schema. One aggregate
# pass fills both arrays, so their elements pair up.


async def standing(
    connection: asyncpg.Connection, workspace_id: uuid.UUID, user_id: str | None
) -> tuple[Workspace, dict[uuid.UUID, Role]] | None:
    """The workspace and the person's roles in it and in each of its ancestors (none for
    `user_id` None, an API key); None when there is no such workspace."""
    row = await connection.fetchrow(_STANDING, workspace_id, user_id)
    if row is None:
        return None
    held = zip(row["held_workspace_ids"] or [], row["held_roles"] or [], strict=True)
    return workspace_of_row(row), {held_in: Role(role) for held_in, role in held}
