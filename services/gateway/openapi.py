"""One API document: the public operations of every service behind the gateway, with
what the gateway itself answers added to each of them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from contracts import problems
from contracts.problems import ProblemType
from services.gateway.routes import ROUTES, Route
from shared.openapi import PROBLEM_SCHEMAS, REQUEST_ID, add_problem, with_request_ids

logger = logging.getLogger(__name__)

PUBLIC_PREFIX = "/v1/"

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT or API key (`atr_…`)",
        "description": "A user's token (HS256 or RS256 JWT with `sub`, `email`, "
        "`email_verified`, `exp`), or an API key.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`atr_…`), instead of `Authorization: Bearer`.",
    },
}

WWW_AUTHENTICATE: dict[str, Any] = {
    "description": "How to authenticate: `Bearer`.",
    "required": True,
    "schema": {"type": "string"},
}

REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": REQUEST_ID,
    "in": "header",
    "required": False,
    "description": "The caller's id for the request, echoed in the answer's `X-Request-Id` "
    "and in its problem's `request_id` when it is 1 to 128 of `A-Z a-z 0-9 . _ : -` "
    "(another value is replaced, not refused).",
    "schema": {"type": "string"},
}

EVERY_OPERATION = (
    problems.MALFORMED_REQUEST,
    problems.UNAUTHENTICATED,
    problems.FORBIDDEN,
    problems.REQUEST_TIMEOUT,
    problems.PAYLOAD_TOO_LARGE,
    problems.VALIDATION_FAILED,
    problems.RATE_LIMITED,
    problems.HEADERS_TOO_LARGE,
    problems.INTERNAL_ERROR,
    problems.BAD_GATEWAY,
    problems.SERVICE_UNAVAILABLE,
    problems.NOT_READY_YET,
    problems.GATEWAY_TIMEOUT,
)
"""What the gateway may answer to any request: a request it cannot read (400), that
comes too slowly (408) or is too large (413, 431); a caller it does not know (401) or
whose role or kind of credentials (a person's, an API key's) does not allow the
operation (403); a `?limit=` out of range (422); too many requests (429); and a
service that failed, is away, is not ready or has not heard of a change yet (500,
502, 503, 504)."""
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def gateway_problems(method: str, path: str, route: Route | None) -> list[ProblemType]:
    """What the gateway answers to `method path` besides what the service does."""
    answered = list(EVERY_OPERATION)
    if "{" in path:
        answered.append(problems.NOT_FOUND)
    if route is not None and route.verified_email:
        answered.append(problems.EMAIL_NOT_VERIFIED)
    if route is not None and route.in_workspace and method not in _SAFE_METHODS:
        answered.append(problems.WORKSPACE_DELETING)
    return answered


def _without_collisions(
    service: str, document: Mapping[str, Any], merged: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    """`document` with each component that another service's document already names
    differently renamed after its service (billing's `UsageItem` is `BillingUsageItem`
    next to apikeys' `UsageItem`), every reference to it rewritten, and so on for the
    components that differ once their references are (billing's `UsageReport`)."""
    renamed: dict[str, str] = {}

    def rewritten(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: renamed.get(value, value)
                if key == "$ref" and isinstance(value, str)
                else rewritten(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [rewritten(item) for item in node]
        return node

    result: dict[str, Any] = dict(document)
    while True:
        result = rewritten(dict(document))
        colliding = {
            f"#/components/{kind}/{name}": f"#/components/{kind}/{service.capitalize()}{name}"
            for kind, entries in result.get("components", {}).items()
            for name, entry in entries.items()
            if name in merged.get(kind, {}) and merged[kind][name] != entry
        }
        if colliding.keys() <= renamed.keys():
            break
        renamed |= colliding
    result["components"] = {
        kind: {
            renamed.get(f"#/components/{kind}/{name}", name).rsplit("/", 1)[-1]: entry
            for name, entry in entries.items()
        }
        for kind, entries in result.get("components", {}).items()
    }
    return result


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]],
    *,
    title: str,
    version: str,
    routes: tuple[Route, ...] = ROUTES,
) -> dict[str, Any]:
    """The `/v1/…` operations of each service's document (not `/internal/…` nor health
    endpoints) with their components, secured by the gateway's schemes, and with the
    problems the gateway answers itself."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for service, original in sorted(documents.items()):
        document = _without_collisions(service, original, components)
        for path, operations_of_path in document.get("paths", {}).items():
            if path.startswith(PUBLIC_PREFIX):
                paths.setdefault(path, {}).update(operations_of_path)
        for kind, entries in document.get("components", {}).items():
            components.setdefault(kind, {}).update(entries)
    by_operation = {(route.method, route.template): route for route in routes}
    for path, item in paths.items():
        for method, operation in item.items():
            _add_gateway_answers(operation, method.upper(), path, by_operation)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
    merged_document = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Atrium's public API, served by its gateway. Every answer "
            "carries `X-Request-Id`; every error is `application/problem+json` "
            "(RFC 9457), listed under its status with the problem types (`type`) it "
            "can carry.",
        },
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    return with_request_ids(merged_document)


def _add_gateway_answers(
    operation: dict[str, Any],
    method: str,
    path: str,
    routes: Mapping[tuple[str, str], Route],
) -> None:
    route = routes.get((method, path))
    if route is None:
        logger.warning("%s %s is in a service's document but not in the route table", method, path)
    responses = operation.setdefault("responses", {})
    for problem in gateway_problems(method, path, route):
        add_problem(responses, problem)
    responses[str(problems.UNAUTHENTICATED.status)].setdefault("headers", {})[
        "WWW-Authenticate"
    ] = WWW_AUTHENTICATE
    parameters = operation.setdefault("parameters", [])
    if not any(parameter.get("name") == REQUEST_ID for parameter in parameters):
        parameters.append(REQUEST_ID_PARAMETER)
