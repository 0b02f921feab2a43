"""The services behind the gateway, over one pooled HTTP client: forwarding a request,
asking identity about access and apikeys about a key, reading each service's API
document and readiness.

A pooled connection can turn out to be closed by the service just as a request is
sent down it (the service let it go after an error, or as idle). Such a request never
reached the service's application, or its answer was lost: one that may be repeated
(GET, HEAD, PUT, DELETE, or any request with an `Idempotency-Key`) is sent once more,
signed anew, on another connection; any other is a 502 for its own caller only.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from starlette.responses import Response
from yarl import URL

from contracts.permissions import Role
from services.gateway.authz import Access
from services.gateway.keys import KeyRateLimit, KeyRecord
from services.gateway.projections import WorkspaceStatus
from services.gateway.settings import GatewaySettings
from shared.principal import PRINCIPAL_HEADER, Principal, sign_principal
from shared.service import KEEP_ALIVE_SECONDS
from shared.settings import ServiceName
from shared.tracing import TRACE_CONTEXT_HEADERS, calling

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)
# Credentials stay at the edge; a principal the caller made up never reaches a service,
# nor a trace context (the gateway's own goes instead, see `shared.tracing`).
FORWARDED_AWAY = (
    HOP_BY_HOP | TRACE_CONTEXT_HEADERS | {"authorization", "x-api-key", PRINCIPAL_HEADER}
)
_NOT_RETURNED = HOP_BY_HOP | {"x-request-id"}
_NO_ACCESS = frozenset({404, 405})
"""identity's answers that mean "no access" (405: an identity without the endpoint)."""
_REPEATABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_CONNECTION_LOST = frozenset({errno.ECONNRESET, errno.EPIPE})


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    content: bytes


class Upstreams:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._client: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=self.settings.upstream_timeout_seconds,
                connect=self.settings.upstream_connect_timeout_seconds,
            ),
            connector=aiohttp.TCPConnector(
                limit=512, ttl_dns_cache=300, keepalive_timeout=KEEP_ALIVE_SECONDS - 1
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> aiohttp.ClientSession:
        assert self._client is not None, "the gateway's HTTP client is not open"
        return self._client

    async def forward(
        self,
        service: ServiceName,
        *,
        method: str,
        raw_target: str,
        headers: dict[str, str],
        body: bytes,
        principal: Principal,
    ) -> Response:
        """`raw_target` is the path and query as the client sent them. Raises
        `TimeoutError` or `aiohttp.ClientError` when the service fails."""
        answer = await self._exchange(
            service,
            method,
            URL(self.settings.base_url_for(service) + raw_target, encoded=True),
            target=raw_target,
            principal=principal,
            headers=headers,
            body=body,
            repeatable=method in _REPEATABLE_METHODS or "idempotency-key" in headers,
        )
        return Response(
            content=answer.content,
            status_code=answer.status,
            headers={
                name: value
                for name, value in answer.headers.items()
                if name.lower() not in _NOT_RETURNED
            },
        )

    async def identity_access(self, caller: Principal, workspace_id: uuid.UUID) -> Access | None:
        """identity's own answer: the caller's access to the workspace, or None."""
        path = f"/internal/v1/workspaces/{workspace_id}/access"
        principal = Principal(
            user_id=caller.user_id,
            email=caller.email,
            email_verified=caller.email_verified,
            workspace_id=workspace_id,
        )
        answer = await self._exchange(
            ServiceName.IDENTITY,
            "GET",
            URL(self.settings.base_url_for(ServiceName.IDENTITY) + path),
            target=path,
            principal=principal,
            time_limit=aiohttp.ClientTimeout(total=self.settings.access_check_timeout_seconds),
        )
        if answer.status in _NO_ACCESS:
            return None
        if answer.status != 200:
            msg = f"identity answered {answer.status} about access"
            raise aiohttp.ClientError(msg)
        access: dict[str, Any] = json.loads(answer.content)
        return Access(
            workspace_id=workspace_id,
            role=Role(access["role"]),
            ancestor_super_admin=bool(access.get("ancestor_super_admin")),
            status=WorkspaceStatus(access.get("status") or WorkspaceStatus.ACTIVE),
        )

    async def apikeys_key(self, hashed: str) -> KeyRecord | None:
        """apikeys' own answer: the key with this hash, or None when there is none."""
        path = f"/internal/v1/api-keys/{hashed}"
        answer = await self._exchange(
            ServiceName.APIKEYS,
            "GET",
            URL(self.settings.base_url_for(ServiceName.APIKEYS) + path),
            target=path,
            principal=Principal(),
            time_limit=aiohttp.ClientTimeout(total=self.settings.access_check_timeout_seconds),
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            msg = f"apikeys answered {answer.status} about a key"
            raise aiohttp.ClientError(msg)
        key: dict[str, Any] = json.loads(answer.content)
        limit = key.get("rate_limit")
        return KeyRecord(
            key_id=uuid.UUID(key["key_id"]),
            hash=hashed,
            workspace_id=uuid.UUID(key["workspace_id"]),
            root_id=uuid.UUID(key["root_id"]),
            suspended=bool(key["suspended"]),
            revoked_at=_moment(key.get("revoked_at")),
            expires_at=_moment(key.get("expires_at")),
            rate_limit=None
            if limit is None
            else KeyRateLimit(int(limit["requests"]), int(limit["period_seconds"])),
        )

    async def openapi(self, service: ServiceName) -> dict[str, Any]:
        async with self.client.get(
            f"{self.settings.base_url_for(service)}/openapi.json",
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response:
            response.raise_for_status()
            document: dict[str, Any] = await response.json()
            return document

    async def check_ready(self, service: ServiceName) -> None:
        async with self.client.get(
            f"{self.settings.base_url_for(service)}/readyz",
            timeout=aiohttp.ClientTimeout(total=3),
        ) as response:
            response.raise_for_status()

    async def _exchange(
        self,
        service: ServiceName,
        method: str,
        url: URL,
        *,
        target: str,
        principal: Principal,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        time_limit: aiohttp.ClientTimeout | None = None,
        repeatable: bool = True,
    ) -> _Answer:
        """One request and its whole answer; sent once more when it was lost on a
        connection the service had closed, if it may be repeated."""
        exchange = functools.partial(
            self._send_once,
            service,
            method,
            url,
            target=target,
            principal=principal,
            headers=headers or {},
            body=body,
            time_limit=time_limit or self.client.timeout,
        )
        try:
            return await exchange()
        except aiohttp.ClientError as failed:
            if not (repeatable and _lost_on_a_stale_connection(failed)):
                raise
            logger.info("%s %s: connection lost (%s), sending it again", method, url, failed)
        return await exchange()

    async def _send_once(
        self,
        service: ServiceName,
        method: str,
        url: URL,
        *,
        target: str,
        principal: Principal,
        headers: dict[str, str],
        body: bytes,
        time_limit: aiohttp.ClientTimeout,
    ) -> _Answer:
        # Signed for each attempt: a service takes each principal's nonce once.
        signed = sign_principal(
            principal, method=method, target=target, body=body, secret=self.settings.internal_secret
        )
        with calling(service.value, method) as call:
            async with self.client.request(
                method,
                url,
                data=body,
                headers={**headers, **call.headers, PRINCIPAL_HEADER: signed},
                timeout=time_limit,
            ) as response:
                call.answered(response.status)
                return _Answer(response.status, response.headers, await response.read())


def _moment(written: str | None) -> float | None:
    """An RFC 3339 time as seconds since the epoch; one without a zone is refused."""
    if written is None:
        return None
    moment = datetime.fromisoformat(written)
    if moment.tzinfo is None:
        msg = f"a time without its zone: {written}"
        raise ValueError(msg)
    return moment.timestamp()


def _lost_on_a_stale_connection(failed: aiohttp.ClientError) -> bool:
    """The connection closed under the request, before any answer: not a service that
    cannot be reached (a connect error), nor an answer cut short."""
    if isinstance(failed, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        return True
    return (
        isinstance(failed, aiohttp.ClientOSError)
        and not isinstance(failed, aiohttp.ClientConnectorError)
        and failed.errno in _CONNECTION_LOST
    )
