"""A service imports only `contracts`, `shared`, itself and third-party packages."""

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize(
    "service", sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists())
)
def test_a_service_does_not_import_another_service(service: str) -> None:
    offending = {
        f"{path.relative_to(SERVICES)}: {module}"
        for path in (SERVICES / service).rglob("*.py")
        for module in imported_modules(path)
        if (module.startswith("services.") and not module.startswith(f"services.{service}"))
        or module.startswith("infra")
    }
    assert offending == set()


REACHING_PAST_THE_GATEWAY = (
    "sqlalchemy",
    "asyncpg",
    "aiokafka",
    "faststream",
    "shared.db",
    "shared.unit_of_work",
    "shared.principal",
    "shared.outbox",
    "shared.inbox",
)


def test_the_console_reaches_the_system_only_through_the_gateways_public_api() -> None:
    """The console acts with the signed-in person's token through `clients.gateway`: no
    database, no Kafka, no principal signed for a service."""
    offending = {
        f"{path.relative_to(SERVICES)}: {module}"
        for path in (SERVICES / "console").rglob("*.py")
        for module in imported_modules(path)
        if module.startswith(REACHING_PAST_THE_GATEWAY)
    }
    assert offending == set()
