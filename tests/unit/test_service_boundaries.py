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
