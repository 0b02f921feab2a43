"""One API document: the services' public operations, nothing internal."""

from __future__ import annotations

from typing import Any

import pytest

from infra.docs import service_documents
from services.gateway.openapi import merge_documents
from services.gateway.routes import ROUTES
from shared.fields import NAME_PATTERN

from .conftest import InProcessGateway
from .support import StubUpstream


def document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": schemas}}


def test_public_operations_and_their_components_are_merged() -> None:
    identity = document(
        {
            "/v1/workspaces": {"post": {"operationId": "create"}},
            "/internal/v1/workspaces/{id}/access": {"get": {}},
            "/healthz": {"get": {}},
            "/readyz": {"get": {}},
        },
        {"Workspace": {"type": "object"}, "Problem": {"type": "object"}},
    )
    billing = document(
        {"/v1/workspaces/{workspace_id}/balances": {"get": {"operationId": "balances"}}},
        {"Balances": {"type": "object"}, "Problem": {"type": "object"}},
    )

    merged = merge_documents({"identity": identity, "billing": billing}, title="A", version="1")

    assert list(merged["paths"]) == ["/v1/workspaces", "/v1/workspaces/{workspace_id}/balances"]
    assert set(merged["components"]["schemas"]) == {
        "Workspace",
        "Balances",
        "Problem",
        "FieldError",
    }
    assert set(merged["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert merged["security"] == [{"bearer": []}, {"apiKey": []}]


def test_two_services_components_of_one_name_and_different_content_both_stay() -> None:
    def usage(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"items": {"type": "array", "items": item}},
        }

    ref = {"$ref": "#/components/schemas/UsageItem"}
    response = {"200": {"content": {"application/json": {"schema": ref}}}}
    apikeys = document(
        {"/v1/workspaces/{workspace_id}/api-usage": {"get": {"responses": response}}},
        {"UsageItem": {"required": ["date"]}, "Usage": usage(ref)},
    )
    billing = document(
        {"/v1/workspaces/{workspace_id}/usage": {"get": {"responses": response}}},
        {"UsageItem": {"required": ["key"]}, "Usage": usage(ref)},
    )

    merged = merge_documents({"apikeys": apikeys, "billing": billing}, title="A", version="1")

    schemas = merged["components"]["schemas"]
    assert schemas["UsageItem"] == {"required": ["date"]}
    assert schemas["BillingUsageItem"] == {"required": ["key"]}
    assert schemas["Usage"] == usage(ref)
    assert schemas["BillingUsage"] == usage({"$ref": "#/components/schemas/BillingUsageItem"})

    def schema_of(path: str) -> Any:
        operation = merged["paths"][path]["get"]
        return operation["responses"]["200"]["content"]["application/json"]["schema"]

    assert schema_of("/v1/workspaces/{workspace_id}/api-usage") == ref
    assert schema_of("/v1/workspaces/{workspace_id}/usage") == {
        "$ref": "#/components/schemas/BillingUsageItem"
    }


async def test_the_gateway_serves_the_merged_document_and_its_docs_page(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    answer = await in_process.client.get("/openapi.json")
    docs = await in_process.client.get("/docs")

    assert answer.status_code == 200
    assert answer.json()["info"]["title"] == "Atrium"
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


# The document clients see: identity's and billing's own, merged by the gateway.

PROBLEM = {"$ref": "#/components/schemas/Problem"}
SPEND = ("post", "/v1/workspaces/{workspace_id}/spend")
INVITE = ("post", "/v1/workspaces/{workspace_id}/invitations")
DOMAIN_PROBLEMS = {
    INVITE: {"seat-limit-reached", "already-member", "already-invited"},
    ("post", "/v1/workspaces/{workspace_id}/sub-workspaces"): {
        "seat-limit-reached",
        "depth-limit-reached",
        "parent-billed-cannot-have-children",
    },
    ("delete", "/v1/workspaces/{workspace_id}"): {"root-not-deletable", "has-sub-workspaces"},
    ("patch", "/v1/workspaces/{workspace_id}"): {"root-pays-for-itself", "has-sub-workspaces"},
    ("patch", "/v1/workspaces/{workspace_id}/members/{user_id}"): {"last-super-admin"},
    ("delete", "/v1/workspaces/{workspace_id}/members/{user_id}"): {"last-super-admin"},
    ("post", "/v1/invitations/{invitation_id}/accept"): {"invitation-expired"},
    ("post", "/v1/workspaces/{workspace_id}/purchases"): {"not-a-billing-root"},
    ("put", "/v1/workspaces/{workspace_id}/allocations"): {
        "insufficient-balance",
        "below-usage",
        "billed-on-its-own",
    },
    SPEND: {"insufficient-credits", "key-credit-limit-reached", "idempotency-key-reused"},
}
"""Problems of API.md that each operation must list (among others)."""


@pytest.fixture(scope="module")
def public_document() -> dict[str, Any]:
    documents = service_documents()
    return merge_documents(
        {name: documents[name] for name in ("identity", "billing")},
        title="Atrium",
        version="1.0.0",
    )


def test_the_gateway_asks_for_the_headers_the_documents_require() -> None:
    documents = service_documents()
    merged = merge_documents(
        {route.service.value: documents[route.service.value] for route in ROUTES},
        title="Atrium",
        version="1.0.0",
    )
    for route in ROUTES:
        operation = merged["paths"][route.template][route.method.lower()]
        required = {
            each["name"]
            for each in operation.get("parameters", [])
            if each["in"] == "header" and each.get("required")
        }
        assert required == set(route.required_headers), (route.method, route.template)


def all_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def problem_types(operation: dict[str, Any], status: int) -> set[str]:
    response = operation["responses"][str(status)]
    assert response["content"]["application/problem+json"]["schema"] == PROBLEM
    return set(response["content"]["application/problem+json"]["examples"])


def test_every_operation_lists_what_the_gateway_answers_to_any_request(
    public_document: dict[str, Any],
) -> None:
    operations = all_operations(public_document)
    assert len(operations) >= 24
    for method, path, operation in operations:
        for status, slug in [
            (401, "unauthenticated"),
            (403, "forbidden"),
            (413, "payload-too-large"),
            (422, "validation-failed"),
            (429, "rate-limited"),
            (500, "internal-error"),
            (502, "bad-gateway"),
            (503, "not-ready-yet"),
            (503, "service-unavailable"),
            (504, "gateway-timeout"),
        ]:
            assert slug in problem_types(operation, status), (method, path, status)
        if "{" in path:
            assert "not-found" in problem_types(operation, 404), (method, path)


def test_every_error_answer_is_problem_json_and_every_answer_has_a_request_id(
    public_document: dict[str, Any],
) -> None:
    for method, path, operation in all_operations(public_document):
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-Id"], (method, path, status)
            if int(status) >= 400:
                assert set(response["content"]) == {"application/problem+json"}, (path, status)
        assert operation["responses"]["429"]["headers"]["Retry-After"] == {
            "$ref": "#/components/headers/Retry-After"
        }
        assert "Retry-After" in operation["responses"]["503"]["headers"]
        assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    headers = public_document["components"]["headers"]
    assert headers["X-Request-Id"]["required"] is True
    assert headers["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}


@pytest.mark.parametrize(("operation", "slugs"), DOMAIN_PROBLEMS.items(), ids=str)
def test_an_operation_lists_the_problems_its_rules_refuse_with(
    public_document: dict[str, Any], operation: tuple[str, str], slugs: set[str]
) -> None:
    method, path = operation
    documented = set().union(
        *(
            problem_types(public_document["paths"][path][method], int(status))
            for status in public_document["paths"][path][method]["responses"]
            if int(status) >= 400
        )
    )
    assert slugs <= documented


def test_spending_documents_402_and_inviting_documents_409(
    public_document: dict[str, Any],
) -> None:
    spend = public_document["paths"][SPEND[1]][SPEND[0]]
    invite = public_document["paths"][INVITE[1]][INVITE[0]]

    assert problem_types(spend, 402) == {"insufficient-credits", "key-credit-limit-reached"}
    assert {"seat-limit-reached", "already-member"} <= problem_types(invite, 409)


def test_a_change_to_a_workspace_lists_that_it_may_be_being_deleted(
    public_document: dict[str, Any],
) -> None:
    for method, path, operation in all_operations(public_document):
        if path.startswith("/v1/workspaces/{workspace_id}") and method != "get":
            assert "workspace-deleting" in problem_types(operation, 409), (method, path)


def test_the_gateways_credentials_are_documented(public_document: dict[str, Any]) -> None:
    schemes = public_document["components"]["securitySchemes"]

    assert schemes["bearer"]["scheme"] == "bearer"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    assert public_document["security"] == [{"bearer": []}, {"apiKey": []}]


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [each for each in operation["parameters"] if each["name"] == name]
    assert len(found) == 1
    return found[0]


def schema_of(public_document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = public_document["components"]["schemas"][name]
    return schema


def test_request_constraints_are_in_the_document(public_document: dict[str, Any]) -> None:
    paths = public_document["paths"]
    members = paths["/v1/workspaces/{workspace_id}/members"]["get"]
    limit, cursor = parameter(members, "limit")["schema"], parameter(members, "cursor")["schema"]
    key = parameter(paths[SPEND[1]][SPEND[0]], "Idempotency-Key")

    assert (limit["minimum"], limit["maximum"]) == (1, 200)
    assert {"type": "string", "maxLength": 512} in cursor["anyOf"]
    assert key["required"] is True
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)
    assert "X-Request-Id" in {each["name"] for each in members["parameters"]}
    name = schema_of(public_document, "CreateWorkspaceRequest")["properties"]["name"]
    assert name["pattern"] == NAME_PATTERN
    assert name["minLength"] == 1
    assert "1 to 100 characters after trimming, at least one of them visible" in name["description"]
    email = schema_of(public_document, "InviteRequest")["properties"]["email"]
    assert email["format"] == "email"
