"""`python -m infra.docs DIR`: write the AsyncAPI document of all events and the
OpenAPI document of each service into DIR."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contracts.asyncapi import asyncapi_document
from services.billing.app import create_app as create_billing
from services.gateway.app import create_app as create_gateway
from services.identity.app import create_app as create_identity


def write_documents(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        "asyncapi.json": asyncapi_document(),
        "openapi-identity.json": create_identity().openapi(),
        "openapi-billing.json": create_billing().openapi(),
        "openapi-gateway.json": create_gateway().openapi(),
    }
    written = []
    for name, document in documents.items():
        path = folder / name
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_documents(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/generated")):
        print(path)
