"""One API document: the services' public operations, nothing internal."""

from __future__ import annotations

from typing import Any

from services.gateway.openapi import merge_documents

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
    assert set(merged["components"]["schemas"]) == {"Workspace", "Balances", "Problem"}
    assert set(merged["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert merged["security"] == [{"bearer": []}, {"apiKey": []}]


async def test_the_gateway_serves_the_merged_document_and_its_docs_page(
    in_process: InProcessGateway, stub: StubUpstream
) -> None:
    answer = await in_process.client.get("/openapi.json")
    docs = await in_process.client.get("/docs")

    assert answer.status_code == 200
    assert answer.json()["info"]["title"] == "Atrium"
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
