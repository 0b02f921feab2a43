"""API keys at the edge: the gateway's in-memory copy of apikeys' keys, and the
verification of a presented key against it.

The copy maps each key's hash (HMAC-SHA256 under the pepper) to what the gateway
needs to decide: the key's workspace, whether it is suspended, when it was revoked or
expires, its rate limit. It is built from the `gateway.api_keys` table, which only the
consumers of `atrium.apikeys.key` write (`services.gateway.projection_changes` keeps
every process's copy in step with it). Verifying a key is then a checksum, one HMAC and a
dictionary lookup: no call per request.

A key the copy does not know yet (made a moment ago, its event still on the way) is
asked of apikeys once (`services.gateway.remembered`): its answer stands until the
key's first event arrives, or 30 s; a "no such key" for half a second, per hash, so that
a flood of random well-formed keys costs apikeys one lookup per key and half-second.

A key revoked or rotated through this process is refused by it from the very next
request (`ended_here`), before the event has come back through Kafka; every other
process refuses it once the event has reached the table, within a second.

Every refusal is the same 401, whatever the reason (malformed, unknown, revoked,
expired, suspended, workspace gone): a caller learns nothing about other keys.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from services.gateway.metrics import timed_key_verification
from services.gateway.projections import AccessProjection, WorkspaceStatus
from services.gateway.remembered import RememberedAnswers
from shared.api_keys import key_hash, same_hash, well_formed
from shared.errors import UnauthenticatedError

logger = logging.getLogger(__name__)

PROVISIONAL_SECONDS = 30.0
NEGATIVE_SECONDS = 0.5
MAX_ENDED_HERE = 10_000
"""Keys remembered as revoked or rotated through this process, at most; the oldest are
forgotten first (their events have long reached the projection by then)."""
NOT_VALID = "The API key is not valid."
"""The one detail of every refused key."""


@dataclass(frozen=True, slots=True)
class KeyRateLimit:
    requests: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: uuid.UUID
    hash: str
    workspace_id: uuid.UUID
    root_id: uuid.UUID
    suspended: bool = False
    revoked_at: float | None = None
    """Seconds since the epoch from which the key is refused (a rotation's grace ends
    then); None while it is not revoked."""
    expires_at: float | None = None
    rate_limit: KeyRateLimit | None = None

    def usable(self, now: float) -> bool:
        return not (
            self.suspended
            or (self.revoked_at is not None and self.revoked_at <= now)
            or (self.expires_at is not None and self.expires_at <= now)
        )


class KeyProjection:
    """Keys by hash. A key whose row has no hash yet (an event that overtook its
    `apikey.created`) is not here until it has one."""

    def __init__(self) -> None:
        self._by_hash: dict[str, KeyRecord] = {}
        self._hash_of: dict[uuid.UUID, str] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def find(self, hashed: str) -> KeyRecord | None:
        return self._by_hash.get(hashed)

    def replace_all(self, records: Iterable[KeyRecord]) -> None:
        by_hash = {record.hash: record for record in records}
        self._by_hash = by_hash
        self._hash_of = {record.key_id: record.hash for record in by_hash.values()}

    def put(self, record: KeyRecord) -> None:
        previous = self._hash_of.get(record.key_id)
        if previous is not None and previous != record.hash:
            del self._by_hash[previous]
        self._by_hash[record.hash] = record
        self._hash_of[record.key_id] = record.hash


AskApikeys = Callable[[str], Awaitable[KeyRecord | None]]
"""apikeys' own answer for a hash: the key, or None for no such key. It raises when
apikeys cannot answer."""


class ApikeysUnavailableError(Exception):
    """apikeys could not say whether a key the gateway does not know yet exists."""


class KeyVerifier:
    def __init__(
        self,
        keys: KeyProjection,
        workspaces: AccessProjection,
        *,
        pepper: str,
        ask_apikeys: AskApikeys,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.workspaces = workspaces
        self.pepper = pepper
        self.ask_apikeys = ask_apikeys
        self.clock = clock
        self._answers: RememberedAnswers[str, KeyRecord] = RememberedAnswers(
            positive_seconds=PROVISIONAL_SECONDS,
            negative_seconds=NEGATIVE_SECONDS,
            clock=monotonic,
        )
        self._ended_here: dict[uuid.UUID, float] = {}

    def ended_here(self, key_id: uuid.UUID, *, at: float) -> None:
        """apikeys has answered this process that the key ends `at` (seconds since the
        epoch): now for a revocation, at the end of the grace for a rotation. An earlier
        end wins (a key revoked during its grace)."""
        ends = min(at, self._ended_here.get(key_id, at))
        self._ended_here.pop(key_id, None)
        while len(self._ended_here) >= MAX_ENDED_HERE:
            del self._ended_here[next(iter(self._ended_here))]
        self._ended_here[key_id] = ends

    def known(self, key: str) -> KeyRecord | None:
        """The key if it is usable now and known here without asking anybody."""
        if not well_formed(key):
            return None
        hashed = key_hash(key, self.pepper)
        return self._usable(self.keys.find(hashed), hashed)

    @timed_key_verification
    async def verify(
        self, key: str, *, before_asking: Callable[[], None] = lambda: None
    ) -> KeyRecord:
        """The key, if it may be used now; else `UnauthenticatedError`. A malformed key
        (its checksum) is refused before anything is looked up. A key unknown here is
        asked of apikeys, once `before_asking` has not raised; `ApikeysUnavailableError`
        when apikeys cannot answer."""
        if not well_formed(key):
            raise UnauthenticatedError(NOT_VALID)
        hashed = key_hash(key, self.pepper)
        record = self.keys.find(hashed)
        if record is None:
            before_asking()
            try:
                record = await self._answers.ask(hashed, lambda: self.ask_apikeys(hashed))
            except Exception as failed:
                logger.warning("apikeys could not say whether a key exists: %r", failed)
                raise ApikeysUnavailableError from failed
        usable = self._usable(record, hashed)
        if usable is None:
            raise UnauthenticatedError(NOT_VALID)
        return usable

    def _usable(self, record: KeyRecord | None, hashed: str) -> KeyRecord | None:
        if record is None or not same_hash(record.hash, hashed):
            return None
        now = self.clock()
        if not record.usable(now):
            return None
        ended = self._ended_here.get(record.key_id)
        if ended is not None and ended <= now:
            return None
        workspace = self.workspaces.workspaces.get(record.workspace_id)
        if workspace is not None and (
            workspace.status is not WorkspaceStatus.ACTIVE or not workspace.api_access
        ):
            return None
        return record

    def key_changed(self, key_id: uuid.UUID) -> None:
        """An event about the key has reached the table (and the projection): apikeys'
        provisional answer about it no longer counts."""
        self._answers.forget(lambda _, record: record is not None and record.key_id == key_id)

    def all_keys_changed(self) -> None:
        """The projection was loaded anew (changes may have been missed meanwhile)."""
        self._answers.forget(lambda _, __: True)
