"""Each public path goes to the service that owns it."""

import pytest

from services.gateway.routes import owning_service
from shared.settings import ServiceName


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/v1/workspaces", ServiceName.IDENTITY),
        ("/v1/workspaces/0b4e/members", ServiceName.IDENTITY),
        ("/v1/workspaces/0b4e", ServiceName.IDENTITY),
        ("/v1/workspaces/0b4e/balances", ServiceName.BILLING),
        ("/v1/workspacesX", None),
        ("/v1/unknown", None),
    ],
)
def test_a_path_is_routed_to_its_owner(path: str, service: ServiceName | None) -> None:
    assert owning_service(path) is service
