"""Every gateway process's copy of the keys, kept in step with `gateway.api_keys`.

Only one process consumes a given event (the gateways share one consumer group), but
each of them must refuse a revoked key within a second. The consumer writes the key's
row and notifies `KEY_CHANNEL` with the key's id in the same transaction; PostgreSQL
delivers the notification at commit to every process, each of which holds one LISTEN
connection and reloads that key's row into its copy. The row, not the event, is what
a process applies: whatever order the processes hear things in, each ends with what
the table says.

Reloads run one at a time, in one task, so that an older read never lands after a
newer one; notifications that arrive meanwhile are read together in the next query.
Notifications sent while a process is not listening are lost: on each (re)connection,
it first listens, then reloads every key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg

from services.gateway.keys import KeyProjection, KeyVerifier
from services.gateway.repository import KEY_CHANNEL, KeyRepository
from shared.db import Database, plain_url, tls_arguments

logger = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
"""How often the connection is checked when nothing is heard (a lost connection is
also noticed at once, by its termination callback)."""
RETRY_SECONDS = 0.5


class KeyChanges:
    def __init__(self, database: Database, keys: KeyProjection, verifier: KeyVerifier) -> None:
        self.database = database
        self.keys = keys
        self.verifier = verifier
        self._listener: Any = None
        self._reload_everything = True
        self._changed: set[uuid.UUID] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen and load every key, then follow the changes."""
        await self._catch_up()
        logger.info("%d API keys loaded", len(self.keys))
        self._task = asyncio.create_task(self._follow(), name="gateway-key-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_listener()

    async def _follow(self) -> None:
        while True:
            # Cleared before catching up: a notification during a reload wakes the next.
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception:
                logger.warning("could not follow the API key changes; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=CHECK_SECONDS)

    async def _catch_up(self) -> None:
        if not self._listening():
            await self._listen()
            self._reload_everything = True
        if self._reload_everything:
            self._changed.clear()
            async with self.database.transaction() as session:
                everything = await KeyRepository(session).all_keys()
            self.keys.replace_all(everything)
            self._reload_everything = False
            self.verifier.all_keys_changed()
        while self._changed:
            changed, self._changed = self._changed, set()
            try:
                async with self.database.transaction() as session:
                    records = await KeyRepository(session).keys(changed)
            except Exception:
                self._changed |= changed
                raise
            for record in records:
                self.keys.put(record)
            for key_id in changed:
                self.verifier.key_changed(key_id)

    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def _listen(self) -> None:
        await self._close_listener()
        url = self.database.url
        connection = await asyncpg.connect(plain_url(url), **tls_arguments(url))
        connection.add_termination_listener(self._on_lost)
        await connection.add_listener(KEY_CHANNEL, self._on_change)
        self._listener = connection

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove_termination_listener(self._on_lost)
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)

    def _on_change(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._changed.add(uuid.UUID(payload))
        except ValueError:
            logger.warning("ignored a key change that names no key: %r", payload)
            return
        self._wake.set()

    def _on_lost(self, connection: Any) -> None:
        if connection is self._listener:
            logger.warning("lost the connection that listens for API key changes")
            self._wake.set()
