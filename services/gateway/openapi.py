"""One API document: the public operations of every service behind the gateway."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def merge_documents(
    documents: Mapping[str, Mapping[str, Any]], *, title: str, version: str
) -> dict[str, Any]:
    """The `/v1/…` operations of each service's document (not `/internal/…` nor health
    endpoints) with their components, secured by the gateway's schemes."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for service, document in sorted(documents.items()):
        for path, operations in document.get("paths", {}).items():
            if path.startswith(PUBLIC_PREFIX):
                paths.setdefault(path, {}).update(operations)
        for kind, entries in document.get("components", {}).items():
            merged = components.setdefault(kind, {})
            for name, entry in entries.items():
                if name in merged and merged[name] != entry:
                    logger.warning(
                        "%s's component %s/%s differs; the first one is kept", service, kind, name
                    )
                merged.setdefault(name, entry)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Atrium's public API, served by its gateway. Errors are "
            "`application/problem+json` (RFC 9457).",
        },
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{"bearer": []}, {"apiKey": []}],
    }
