"""A caller's access to a workspace: from the projection, or, while the projection has
not caught up yet, from identity itself (read-your-writes).

A caller who has just created or joined a workspace is not in the projection until
the event arrives. Before answering 404 the gateway asks identity, and remembers its
answer (`services.gateway.remembered`): a positive one until a change to that
workspace or caller reaches the projection, or for `PROVISIONAL_SECONDS` at most; a
negative one for `NEGATIVE_SECONDS`, long enough to spare identity a flood of probes
for ids that are not the caller's, short enough not to hide a workspace the caller
creates a moment later.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from contracts.permissions import Role
from services.gateway.authz import Access, effective_access
from services.gateway.projections import AccessProjection, Membership, WorkspaceNode
from services.gateway.remembered import RememberedAnswers
from shared.principal import Principal

logger = logging.getLogger(__name__)

PROVISIONAL_SECONDS = 30.0
NEGATIVE_SECONDS = 0.25


class IdentityUnavailableError(Exception):
    """identity could not say whether the caller may see a workspace the projection does
    not know: the gateway cannot tell a workspace made a moment ago from no workspace, so
    it says neither (no 404 for a workspace that may exist)."""


AskIdentity = Callable[[Principal, uuid.UUID], Awaitable[Access | None]]
"""identity's own answer for (caller, workspace): their access, or None for none. It
raises when identity cannot answer."""


class AccessResolver:
    def __init__(
        self,
        projection: AccessProjection,
        ask_identity: AskIdentity,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.projection = projection
        self.ask_identity = ask_identity
        self._answers: RememberedAnswers[tuple[uuid.UUID, str], Access] = RememberedAnswers(
            positive_seconds=PROVISIONAL_SECONDS, negative_seconds=NEGATIVE_SECONDS, clock=clock
        )

    async def access(self, caller: Principal, workspace_id: uuid.UUID) -> Access | None:
        user_id = caller.user_id
        if user_id is None:
            return None
        known = effective_access(self.projection, user_id, workspace_id)
        if known is not None or self.projection.is_deleted(workspace_id):
            return known
        try:
            return await self._answers.ask(
                (workspace_id, user_id), lambda: self.ask_identity(caller, workspace_id)
            )
        except Exception as failed:
            logger.warning("identity could not say whether %s may see %s", user_id, workspace_id)
            raise IdentityUnavailableError from failed

    # Rows of the gateway's tables, read again because a notification said they changed
    # (`services.gateway.projection_changes`), in every process. Each makes the projection
    # the authority again for what it is about.

    def workspace_loaded(self, workspace_id: uuid.UUID, workspace: WorkspaceNode | None) -> None:
        """The workspace's row as it now stands; None when it has none."""
        if workspace is None:
            self.projection.remove_workspace(workspace_id)
        else:
            self.projection.put_workspace(workspace)
        self._answers.forget(lambda key, _: key[0] == workspace_id)

    def membership_loaded(self, workspace_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        """The member's role as their row now says; None when there is no row (removed)."""
        if role is None:
            self.projection.remove_member(workspace_id, user_id)
        else:
            self.projection.put_member(Membership(workspace_id, user_id, role))
        # A role in one workspace bears on its descendants too: forget all of the caller's.
        self._answers.forget(lambda key, _: key[1] == user_id)

    def everything_loaded(
        self, workspaces: Iterable[WorkspaceNode], memberships: Iterable[Membership]
    ) -> None:
        """The projection was loaded anew (changes may have been missed meanwhile)."""
        self.projection.load(workspaces, memberships)
        self._answers.forget(lambda _, __: True)
