"""Every gateway process's copy of its projections, kept in step with the tables: the
workspace tree and its memberships (`gateway.workspaces`, `gateway.memberships`) and
the API keys (`gateway.api_keys`).

Only one process consumes a given event (the gateways share one consumer group), but
each of them must refuse a removed member or a revoked key within a second. The
consumer writes the rows and notifies what changed in the same transaction
(`services.gateway.repository`); PostgreSQL delivers the notification at commit to
every process, each of which holds one LISTEN connection and reads the changed rows
into its copy. The rows, not the events, are what a process applies (a row that is
gone is a member removed): whatever order the processes hear things in, each ends
with what the tables say. The consuming process is no exception: it too learns of
its own writes from the notification.

Reads run one at a time, in one task, so that an older read never lands after a
newer one; notifications that arrive meanwhile are read together in the next round.
Notifications sent while a process is not listening are lost: on each (re)connection,
it first listens, then reloads everything (which is also how a process starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.gateway.access import AccessResolver
from services.gateway.keys import KeyProjection, KeyVerifier
from services.gateway.repository import (
    ACCESS_CHANNEL,
    KEY_CHANNEL,
    AccessChange,
    KeyRepository,
    ProjectionRepository,
)
from shared.db import Database, plain_url, tls_arguments

logger = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
"""How often the connection is checked when nothing is heard (a lost connection is
also noticed at once, by its termination callback)."""
RETRY_SECONDS = 0.5


@dataclass(slots=True)
class _Changed:
    """What the notifications heard since the last read name."""

    keys: set[uuid.UUID] = field(default_factory=set)
    workspaces: set[uuid.UUID] = field(default_factory=set)
    members: set[tuple[uuid.UUID, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.keys or self.workspaces or self.members)

    def merge(self, other: _Changed) -> None:
        self.keys |= other.keys
        self.workspaces |= other.workspaces
        self.members |= other.members


class ProjectionChanges:
    def __init__(
        self,
        database: Database,
        resolver: AccessResolver,
        keys: KeyProjection,
        verifier: KeyVerifier,
    ) -> None:
        self.database = database
        self.resolver = resolver
        self.keys = keys
        self.verifier = verifier
        self._listener: Any = None
        self._reload_everything = True
        self._changed = _Changed()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Listen and load everything, then follow the changes."""
        await self._catch_up()
        self._task = asyncio.create_task(self._follow(), name="gateway-projection-changes")

    async def stop(self) -> None:
        # Python 3.11's `wait_for` can swallow a cancellation that comes as the wake-up
        # does; the flag ends the loop then.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_listener()

    async def _follow(self) -> None:
        while not self._stopping:
            # Cleared before catching up: a notification during a read wakes the next.
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception:
                logger.warning("could not follow the projection changes; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=CHECK_SECONDS)

    async def _catch_up(self) -> None:
        if not self._listening():
            await self._listen()
            self._reload_everything = True
        if self._reload_everything:
            self._changed = _Changed()
            await self._load_everything()
            self._reload_everything = False
        while self._changed:
            changed, self._changed = self._changed, _Changed()
            try:
                await self._load(changed)
            except Exception:
                self._changed.merge(changed)
                raise

    async def _load_everything(self) -> None:
        async with self.database.transaction() as session:
            projection = ProjectionRepository(session)
            workspaces = await projection.all_workspaces()
            memberships = await projection.all_memberships()
            keys = await KeyRepository(session).all_keys()
        self.resolver.everything_loaded(workspaces, memberships)
        self.keys.replace_all(keys)
        self.verifier.all_keys_changed()
        logger.info(
            "projections loaded: %d workspaces, %d memberships, %d API keys",
            len(workspaces),
            len(memberships),
            len(keys),
        )

    async def _load(self, changed: _Changed) -> None:
        async with self.database.transaction() as session:
            projection = ProjectionRepository(session)
            workspaces = (
                await projection.workspaces(changed.workspaces) if changed.workspaces else []
            )
            memberships = await projection.memberships(changed.members) if changed.members else []
            keys = await KeyRepository(session).keys(changed.keys) if changed.keys else []
        found = {workspace.id: workspace for workspace in workspaces}
        for workspace_id in changed.workspaces:
            self.resolver.workspace_loaded(workspace_id, found.get(workspace_id))
        roles = {(member.workspace_id, member.user_id): member.role for member in memberships}
        for workspace_id, user_id in changed.members:
            self.resolver.membership_loaded(
                workspace_id, user_id, roles.get((workspace_id, user_id))
            )
        for record in keys:
            self.keys.put(record)
        for key_id in changed.keys:
            self.verifier.key_changed(key_id)

    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def _listen(self) -> None:
        await self._close_listener()
        url = self.database.url
        connection = await asyncpg.connect(plain_url(url), **tls_arguments(url))
        try:
            await connection.add_listener(KEY_CHANNEL, self._on_key_change)
            await connection.add_listener(ACCESS_CHANNEL, self._on_access_change)
        except BaseException:
            await connection.close(timeout=2)
            raise
        connection.add_termination_listener(self._on_lost)
        self._listener = connection

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove_termination_listener(self._on_lost)
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)

    def _on_key_change(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._changed.keys.add(uuid.UUID(payload))
        except ValueError:
            logger.warning("ignored a key change that names no key: %r", payload)
            return
        self._wake.set()

    def _on_access_change(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            change = AccessChange.from_payload(payload)
        except ValueError:
            logger.warning("ignored an access change that names no workspace: %r", payload)
            return
        if change.user_id is None:
            self._changed.workspaces.add(change.workspace_id)
        else:
            self._changed.members.add((change.workspace_id, change.user_id))
        self._wake.set()

    def _on_lost(self, connection: Any) -> None:
        if connection is self._listener:
            logger.warning("lost the connection that listens for projection changes")
            self._wake.set()
