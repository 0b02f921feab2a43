"""Which service owns which public path."""

from __future__ import annotations

import re

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
