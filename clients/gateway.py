"""One client of the gateway's public API (v1), shared by the command line and the
console.

It sends the caller's token, turns every `application/problem+json` answer into a
`Problem` (whose `detail` is what a person should read), follows `next_cursor` for
lists, and waits out a `503 not-ready-yet` or a `429` the way the API asks: a request
is sent again after `Retry-After` (a few times, a few seconds at most each) only when
sending it twice cannot apply it twice (a read, or a write that carries an
`Idempotency-Key`). A tree of many workspaces read at once can pass the caller's burst;
its reads then slow down instead of failing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
RETRIES = 3
"""How many times a repeatable request is sent again after a 503 not-ready-yet or a 429."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Problem(Exception):  # noqa: N818 (the API's own name for an error answer)
    """An error answer of the API (RFC 9457), or a gateway that could not be reached
    (`status` 0)."""

    status: int
    type: str
    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail or self.title

    @property
    def field_errors(self) -> dict[str, str]:
        """The 422's field errors, by field name."""
        return {str(error.get("field", "")): str(error.get("message", "")) for error in self.errors}

    @classmethod
    def of(cls, response: httpx.Response) -> Problem:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(
                response.status_code,
                "about:blank",
                response.reason_phrase,
                f"The gateway answered {response.status_code} {response.reason_phrase}.",
            )
        return cls(
            status=int(body.get("status", response.status_code)),
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", response.reason_phrase)),
            detail=str(body.get("detail", "")),
            errors=list(body.get("errors") or []),
        )


class Gateway:
    """The public API as one signed-in caller (a person's token or an API key)."""

    def __init__(
        self,
        token: str | None,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The answer's JSON (None for 202/204 without a body), or `Problem`."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        repeatable = method in SAFE_METHODS or idempotency_key is not None
        query = {name: value for name, value in (params or {}).items() if value is not None}
        for attempt in range(RETRIES + 1):
            try:
                response = await self._http.request(
                    method, path, json=json, params=query, headers=headers
                )
            except httpx.TransportError as error:
                raise Problem(
                    0, "unreachable", "Gateway unreachable", f"{self.base_url}: {error}"
                ) from error
            if repeatable and attempt < RETRIES and _worth_waiting_for(response):
                await asyncio.sleep(_retry_after(response))
                continue
            break
        if response.is_error:
            raise Problem.of(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def post(
        self,
        path: str,
        json: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return await self.request(
            "POST", path, json=json, params=params, idempotency_key=idempotency_key
        )

    async def patch(self, path: str, json: Any) -> Any:
        return await self.request("PATCH", path, json=json)

    async def put(self, path: str, json: Any) -> Any:
        return await self.request("PUT", path, json=json)

    async def delete(self, path: str, **params: Any) -> Any:
        return await self.request("DELETE", path, params=params)

    async def items(self, path: str, *, limit: int = 200, **params: Any) -> AsyncIterator[Any]:
        """Every item of a paginated list, page after page."""
        cursor: str | None = None
        while True:
            page = await self.get(path, limit=limit, cursor=cursor, **params)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def all_items(self, path: str, **params: Any) -> list[Any]:
        return [item async for item in self.items(path, **params)]


def new_idempotency_key() -> str:
    """A key for one write the caller means to make once, however often it is sent."""
    return str(uuid.uuid4())


def _worth_waiting_for(response: httpx.Response) -> bool:
    """A refusal that says when to ask again: the caller's rate limit, or a service still
    waiting for an event."""
    if response.status_code == 429:
        return True
    return response.status_code == 503 and Problem.of(response).type == "not-ready-yet"


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), 0.1), 5.0)
    except ValueError:
        return 1.0
