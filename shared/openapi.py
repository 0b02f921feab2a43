"""The API document tells every answer: each error as `application/problem+json` with
the `Problem` schema, under its status, with the problem types (slugs) it can carry.

An endpoint names what its use case may refuse with, as an argument of its decorator:
`responses=problems_for(SeatLimitReachedError, AlreadyMemberError)`. What every
endpoint of a service may answer (422 for a request that is not valid, 400 for a body
that is not JSON, 500) is added to each operation of the service's document by
`install_problem_documentation`; the gateway adds what it answers itself when it
merges the services' documents (`services.gateway.openapi`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI

from contracts import problems
from contracts.problems import ProblemType
from shared.errors import PROBLEM_JSON, DomainError

SCHEMAS = "#/components/schemas/"
HEADERS = "#/components/headers/"
IDEMPOTENCY_KEY = "Idempotency-Key"
REQUEST_ID = "X-Request-Id"
RETRY_AFTER = "Retry-After"

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "An error (RFC 9457). A client matches on `type`, never on `title` "
        "or `detail`.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "description": "A stable slug, such as `seat-limit-reached`; each answer "
                "lists those it can carry.",
            },
            "title": {"type": "string", "description": "The problem type, for people."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "This occurrence, for people."},
            "errors": {
                "type": "array",
                "description": "With `validation-failed`: each field that is missing or not valid.",
                "items": {"$ref": SCHEMAS + "FieldError"},
            },
            "request_id": {
                "type": "string",
                "description": "The request's `X-Request-Id`, to quote when asking about it.",
            },
        },
    },
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "required": ["field", "message", "type"],
        "properties": {
            "field": {
                "type": "string",
                "description": "A body field as a dotted path (`members.0.email`), or a "
                "parameter after its place (`query.cursor`); the gateway's own check of "
                "`?limit=` names it `limit`.",
            },
            "message": {"type": "string"},
            "type": {
                "type": "string",
                "description": "What is wrong, such as `missing` or `string_too_long`.",
            },
        },
    },
}

RESPONSE_HEADERS: dict[str, Any] = {
    REQUEST_ID: {
        "description": "The request's id, on every answer: the caller's own "
        "`X-Request-Id` when it is 1 to 128 of `A-Z a-z 0-9 . _ : -`, else a new one.",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    },
    RETRY_AFTER: {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
}

_RETRY_AFTER_ON: dict[int, bool] = {429: True, 503: False}
"""The statuses that carry `Retry-After` (True: always; `not-ready-yet` and
`service-unavailable` do, a 503 of another kind may not)."""
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
"""FastAPI's own 422 body, which Atrium never answers with."""
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

Raised = type[DomainError] | ProblemType


def problems_for(*raised: Raised) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of an endpoint whose use case may refuse with these domain
    errors (or problem types)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for each in raised:
        add_problem(responses, each if isinstance(each, ProblemType) else each.problem)
    return responses


def add_problem(responses: dict[Any, Any], problem: ProblemType) -> dict[str, Any]:
    """`problem` among an operation's `responses`: the answer with its status (made if
    need be) lists it and shows it as an example. Returns that answer."""
    response: dict[str, Any] = responses.setdefault(str(problem.status), {})
    content = response.setdefault("content", {}).setdefault(PROBLEM_JSON, {})
    content["schema"] = {"$ref": SCHEMAS + "Problem"}
    content.setdefault("examples", {})[problem.slug] = {
        "summary": problem.title,
        "value": _example(problem),
    }
    response["description"] = "\n".join(
        f"- `{slug}`: {example['summary']}" for slug, example in sorted(content["examples"].items())
    )
    if problem.status in _RETRY_AFTER_ON:
        set_header(response, RETRY_AFTER, required=_RETRY_AFTER_ON[problem.status])
    return response


def set_header(response: dict[str, Any], name: str, *, required: bool = True) -> None:
    """A response header of `RESPONSE_HEADERS`, always sent or (`required=False`) not."""
    header = {"$ref": HEADERS + name} if required else {**RESPONSE_HEADERS[name], "required": False}
    response.setdefault("headers", {})[name] = header


def operations(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS:
                yield operation


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """A service's document (as FastAPI makes it) with every error answer as a problem,
    and the problems any endpoint may answer added to each operation: 422 where there
    is something to validate (and `idempotency-key-reused` where an `Idempotency-Key`
    is taken), 400 where a body is read, 500 everywhere."""
    for operation in operations(document):
        responses = operation.setdefault("responses", {})
        for status in [status for status in responses if _is_error(status)]:
            _as_problem(responses, int(status))
        parameters = {parameter["name"] for parameter in operation.get("parameters", [])}
        if parameters or "requestBody" in operation:
            add_problem(responses, problems.VALIDATION_FAILED)
        if IDEMPOTENCY_KEY in parameters:
            add_problem(responses, problems.IDEMPOTENCY_KEY_REUSED)
        if "requestBody" in operation:
            add_problem(responses, problems.MALFORMED_REQUEST)
        add_problem(responses, problems.INTERNAL_ERROR)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(PROBLEM_SCHEMAS)
    return with_request_ids(document)


def with_request_ids(document: dict[str, Any]) -> dict[str, Any]:
    """Every answer of every operation carries `X-Request-Id`; the headers the answers
    name are among the document's components."""
    for operation in operations(document):
        for response in operation.get("responses", {}).values():
            set_header(response, REQUEST_ID)
    document.setdefault("components", {}).setdefault("headers", {}).update(RESPONSE_HEADERS)
    return document


def install_problem_documentation(app: FastAPI) -> None:
    """The app's `/openapi.json` as `document_problems` makes it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_error(status: str) -> bool:
    return status.isdigit() and int(status) >= 400


def _as_problem(responses: dict[str, Any], status: int) -> None:
    """An error answer as FastAPI wrote it (its 422, or `application/json` next to the
    problem of a `problems_for`): its problem types, as problem+json only."""
    response = responses[str(status)]
    examples = response.get("content", {}).get(PROBLEM_JSON, {}).get("examples", {})
    response["content"] = {}
    if not examples:
        add_problem(responses, problems.problem_for_status(status))
    for slug, example in examples.items():
        value = example["value"]
        add_problem(responses, ProblemType(slug, value["status"], value["title"]))


def _example(problem: ProblemType) -> dict[str, Any]:
    example: dict[str, Any] = {
        "type": problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.title + ".",
        "request_id": "3f2c9a1e8b7d4c6a9e0f1b2c3d4e5f60",
    }
    if problem == problems.VALIDATION_FAILED:
        example["errors"] = [{"field": "name", "message": "Field required", "type": "missing"}]
    return example
