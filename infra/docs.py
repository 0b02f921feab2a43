"""`python -m infra.docs DIR`: write the AsyncAPI document of all events and the
OpenAPI document of each service into DIR."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.asyncapi import asyncapi_document
from infra.secrets_file import random_secrets, settings_fields
from services.apikeys.app import create_app as create_apikeys
from services.apikeys.settings import ApikeysSettings
from services.billing.app import create_app as create_billing
from services.billing.settings import BillingSettings
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.identity.app import create_app as create_identity
from services.identity.settings import IdentitySettings


def service_documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document, by service. The apps are built for their documents
    only, never started: throwaway secrets."""
    secrets = settings_fields(random_secrets())
    return {
        "identity": create_identity(IdentitySettings(**secrets)).openapi(),
        "billing": create_billing(BillingSettings(**secrets)).openapi(),
        "apikeys": create_apikeys(ApikeysSettings(**secrets)).openapi(),
        "gateway": create_gateway(GatewaySettings(**secrets)).openapi(),
    }


def write_documents(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    documents = {
        "asyncapi.json": asyncapi_document(),
        **{f"openapi-{name}.json": document for name, document in service_documents().items()},
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
