"""Domain errors and their one rendering: `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import problems
from contracts.problems import ProblemType
from shared.logging import request_id_var

PROBLEM_JSON = "application/problem+json"

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule said no. Subclasses name the rule and carry its problem type; `headers` go
    on the problem response (for example `Retry-After`), and `errors` (`{field, message,
    type}`, as `field_errors` renders them) name the fields a rule found wrong, as a 422
    for a request's schema does."""

    problem: ClassVar[ProblemType]

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: Mapping[str, str] = headers or {}
        self.errors = errors


class NotFoundError(DomainError):
    problem = problems.NOT_FOUND


class UnauthenticatedError(DomainError):
    problem = problems.UNAUTHENTICATED


class ForbiddenError(DomainError):
    problem = problems.FORBIDDEN


def problem_response(
    problem: ProblemType,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if (request_id := request_id_var.get()) is not None:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=problem.status, headers=headers, media_type=PROBLEM_JSON)


def field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as `{field, message, type}`, with the `body`/`query` prefix kept
    only where it tells the fields apart."""
    rendered = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        source = location[0] if location else "body"
        path = location[1:] if source == "body" else location
        rendered.append(
            {
                "field": ".".join(path) or source,
                "message": item.get("msg", "invalid"),
                "type": item.get("type", "invalid"),
            },
        )
    return rendered


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(exc.problem, exc.detail, errors=exc.errors, headers=exc.headers or None)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc)
    if any(error["type"] == "json_invalid" for error in errors):
        return problem_response(problems.MALFORMED_REQUEST, "The body is not valid JSON.")
    return problem_response(
        problems.VALIDATION_FAILED, "Some fields are missing or not valid.", errors=errors
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = problems.problem_for_status(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else problem.title
    return problem_response(problem, detail, headers=exc.headers)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    # Starlette raises the error again once this answer is sent, and the server then
    # closes the connection. Said here, a client that pools connections (the gateway)
    # does not send another caller's request down a connection that is closing.
    return problem_response(
        problems.INTERNAL_ERROR,
        "The request failed; it has been logged.",
        headers={"connection": "close"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
