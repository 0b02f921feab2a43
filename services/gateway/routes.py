"""Which service owns which public path."""

from __future__ import annotations

import re
import uuid

from shared.settings import ServiceName

_ROUTES: tuple[tuple[re.Pattern[str], ServiceName], ...] = (
    (re.compile(r"^/v1/workspaces/[^/]+/balances$"), ServiceName.BILLING),
    (re.compile(r"^/v1/workspaces(/.*)?$"), ServiceName.IDENTITY),
)


def owning_service(path: str) -> ServiceName | None:
    for pattern, service in _ROUTES:
        if pattern.match(path):
            return service
    return None


_WORKSPACE_IN_PATH = re.compile(r"^/v1/workspaces/([^/]+)")


def workspace_in_path(path: str) -> uuid.UUID | None:
    match = _WORKSPACE_IN_PATH.match(path)
    if match is None:
        return None
    try:
        return uuid.UUID(match.group(1))
    except ValueError:
        return None
