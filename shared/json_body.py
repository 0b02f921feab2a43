"""Request bodies read as JSON one way in every service, stricter than `json.loads`.

Python's `json` module takes a body that a careful API must not: an object that names a
key twice keeps the last value (`{"quantity": 1, "quantity": 999999}` would spend the
larger one, while a proxy or log that reads the first sees 1), a body in UTF-16 or
UTF-32 is decoded by guess, `NaN` and `Infinity` are numbers, and nesting is bounded
only by the interpreter's recursion limit (a few hundred levels in a stored value fail
later, in the database's or the encoder's own limits, as a server error). Here:

- the body is UTF-8 (RFC 8259 §8.1) and valid JSON (RFC 8259), with no `NaN` or
  `Infinity`: otherwise a 400 `malformed-request`;
- no object names a key twice, nothing is nested deeper than `MAX_DEPTH`, and no
  integer has more digits than Python reads (4,300): otherwise a 422
  `validation-failed` naming the field.

A service's routers take `JsonBodyRoute` as their `route_class`; the check runs before
FastAPI reads the body, so that no endpoint, dependency or idempotency record ever sees
a body it refused.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

MAX_DEPTH = 32
"""Objects and arrays inside one another, the body itself counting as one: far more
than any request of this API needs, far fewer than any parser's or encoder's limit."""


class UnreadableJsonError(ValueError):
    """Not UTF-8 JSON at all."""


class RefusedJsonError(ValueError):
    """JSON, but of a shape no request may have; `path` names where."""

    def __init__(self, message: str, path: tuple[str | int, ...], kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.kind = kind


def _no_constants(name: str) -> Any:
    msg = f"{name} is not a JSON number"
    raise UnreadableJsonError(msg)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            msg = f"appears more than once in one object: {name!r}"
            raise RefusedJsonError(msg, (name,), "duplicate_key")
        found[name] = value
    return found


def read_json(body: bytes) -> Any:
    """The body's value, or `UnreadableJsonError` / `RefusedJsonError`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as invalid:
        msg = f"the body is not UTF-8 (byte {invalid.start})"
        raise UnreadableJsonError(msg) from invalid
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constants)
    except (RefusedJsonError, UnreadableJsonError):
        raise
    except json.JSONDecodeError as invalid:
        raise UnreadableJsonError(str(invalid)) from invalid
    except RecursionError as deep:
        msg = f"nested deeper than {MAX_DEPTH} levels"
        raise RefusedJsonError(msg, (), "too_deep") from deep
    except ValueError as beyond:
        # Python reads no integer of more than 4,300 digits (CVE-2020-10735).
        raise RefusedJsonError(str(beyond), (), "number_too_long") from beyond
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Walked without recursion: the value may be as deep as the parser allowed."""
    pending: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if len(path) >= MAX_DEPTH:
            msg = f"nested deeper than {MAX_DEPTH} levels"
            raise RefusedJsonError(msg, path, "too_deep")
        children = item.items() if isinstance(item, dict) else enumerate(item)
        pending.extend((child, (*path, name)) for name, child in children)


def declares_json(content_type: str | None) -> bool:
    """What FastAPI reads as JSON: no content type, `application/json` or `*+json`."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class JsonBodyRequest(Request):
    """A request whose `json()` is `read_json`'s, read once."""

    _strict: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict"):
            self._strict = read_json(await self.body())
        return self._strict


class JsonBodyRoute(APIRoute):
    """An endpoint whose JSON body is read by `read_json`; a body it refuses is a
    `RequestValidationError`, rendered as every other (`shared.errors`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def handle_json_body(request: Request) -> Response:
            strict = JsonBodyRequest(request.scope, request.receive)
            if declares_json(strict.headers.get("content-type")) and await strict.body():
                try:
                    await strict.json()
                except UnreadableJsonError as unreadable:
                    raise RequestValidationError(
                        [{"type": "json_invalid", "loc": ("body",), "msg": str(unreadable)}]
                    ) from unreadable
                except RefusedJsonError as refused:
                    raise RequestValidationError(
                        [
                            {
                                "type": refused.kind,
                                "loc": ("body", *refused.path),
                                "msg": refused.message,
                            }
                        ]
                    ) from refused
            return await handle(strict)

        return handle_json_body
