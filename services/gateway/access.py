"""A caller's access to a workspace: from the projection, or, while the projection has
not caught up yet, from identity itself (read-your-writes).

A caller who has just created or joined a workspace is not in the projection until
the event arrives. Before answering 404 the gateway asks identity, and remembers a
positive answer until an event about that workspace and caller arrives (which then
makes the projection the authority again), or for `PROVISIONAL_SECONDS` at most. A
negative answer is remembered only for `NEGATIVE_SECONDS`: long enough to spare
identity a flood of probes for ids that are not the caller's, short enough not to hide
a workspace the caller creates a moment later.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts.permissions import Role
from services.gateway.authz import Access, effective_access
from services.gateway.projections import (
    AccessProjection,
    Membership,
    WorkspaceNode,
    WorkspaceStatus,
)
from shared.principal import Principal

logger = logging.getLogger(__name__)

PROVISIONAL_SECONDS = 30.0
NEGATIVE_SECONDS = 0.25
MAX_REMEMBERED = 100_000
"""Remembered answers at most; beyond that the oldest are forgotten first."""

AskIdentity = Callable[[Principal, uuid.UUID], Awaitable[Access | None]]
"""identity's own answer for (caller, workspace): their access, or None for none. It
raises when identity cannot answer."""


@dataclass(frozen=True, slots=True)
class _Remembered:
    access: Access | None
    until: float


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
        self.clock = clock
        self._remembered: dict[tuple[uuid.UUID, str], _Remembered] = {}
        self._events_applied = 0

    async def access(self, caller: Principal, workspace_id: uuid.UUID) -> Access | None:
        user_id = caller.user_id
        if user_id is None:
            return None
        known = effective_access(self.projection, user_id, workspace_id)
        if known is not None or self.projection.is_deleted(workspace_id):
            return known
        key = (workspace_id, user_id)
        remembered = self._remembered.get(key)
        now = self.clock()
        if remembered is not None and remembered.until > now:
            return remembered.access
        events_before = self._events_applied
        try:
            answer = await self.ask_identity(caller, workspace_id)
        except Exception:  # noqa: BLE001 - identity unreachable: the projection's answer stands
            logger.warning("identity could not say whether %s may see %s", user_id, workspace_id)
            return None
        # An event applied meanwhile may be newer than identity's answer: then the answer
        # serves this request only.
        if self._events_applied == events_before:
            self._remember(key, answer, now)
        return answer

    def _remember(self, key: tuple[uuid.UUID, str], answer: Access | None, now: float) -> None:
        if len(self._remembered) >= MAX_REMEMBERED:
            self._forget_expired(now)
            while len(self._remembered) >= MAX_REMEMBERED:
                del self._remembered[next(iter(self._remembered))]
        seconds = PROVISIONAL_SECONDS if answer is not None else NEGATIVE_SECONDS
        self._remembered[key] = _Remembered(answer, now + seconds)

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, entry in self._remembered.items() if entry.until <= now]:
            del self._remembered[key]

    def _forget(self, *, workspace_id: uuid.UUID | None = None, user_id: str | None = None) -> None:
        # Few answers are remembered at a time (only until an event catches up, or for a
        # moment), so a scan that also drops the expired ones costs less than an index.
        self._events_applied += 1
        now = self.clock()
        for key in [
            key
            for key, entry in self._remembered.items()
            if key[0] == workspace_id or key[1] == user_id or entry.until <= now
        ]:
            del self._remembered[key]

    # Changes from the events, applied once they have committed to the gateway's tables.
    # Each makes the projection the authority again for what it is about.

    def workspace_created(self, workspace: WorkspaceNode) -> None:
        self.projection.put_workspace(workspace)
        self._forget(workspace_id=workspace.id)

    def settings_changed(self, workspace_id: uuid.UUID, *, api_access: bool) -> None:
        self.projection.change_settings(workspace_id, api_access=api_access)
        self._forget(workspace_id=workspace_id)

    def status_changed(self, workspace_id: uuid.UUID, status: WorkspaceStatus) -> None:
        self.projection.mark(workspace_id, status)
        self._forget(workspace_id=workspace_id)

    def member_changed(self, workspace_id: uuid.UUID, user_id: str, role: Role | None) -> None:
        if role is None:
            self.projection.remove_member(workspace_id, user_id)
        else:
            self.projection.put_member(Membership(workspace_id, user_id, role))
        # A role in one workspace bears on its descendants too: forget all of the caller's.
        self._forget(user_id=user_id)
