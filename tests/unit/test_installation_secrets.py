"""The secrets of an installation: made once, private, reused, and each service's Kafka
password handed to that service only."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from clients.cli.app import app
from infra.secrets_file import (
    KAFKA_ADMIN_PASSWORD,
    ensure_installation_secrets,
    kafka_password_variable,
    secret_names,
    service_environment,
)
from shared.settings import PUBLISHED_SECRETS, ServiceName


def test_the_secrets_are_made_private_on_first_use_and_reused_after(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secrets.env"

    first = ensure_installation_secrets(path)
    again = ensure_installation_secrets(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert again == first
    assert set(first) == set(secret_names())
    assert len(set(first.values())) == len(first), "every secret is a value of its own"
    assert all(len(value) >= 43 and value not in PUBLISHED_SECRETS for value in first.values())


def test_a_secret_added_to_the_system_later_is_added_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.touch(mode=0o600)
    path.write_text("ATRIUM_JWT_SECRET=kept-as-it-was\n")

    secrets = ensure_installation_secrets(path)

    assert secrets["ATRIUM_JWT_SECRET"] == "kept-as-it-was"
    assert set(secrets) == set(secret_names())


def test_a_secrets_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    ensure_installation_secrets(path)
    path.chmod(0o644)

    with pytest.raises(PermissionError, match="chmod 600"):
        ensure_installation_secrets(path)


def test_a_service_gets_its_own_kafka_password_and_no_other(tmp_path: Path) -> None:
    installation = ensure_installation_secrets(tmp_path / "secrets.env")

    environment = service_environment(ServiceName.BILLING, installation, {"PATH": "/bin"})

    own = kafka_password_variable(ServiceName.BILLING)
    assert environment[own] == installation[own]
    assert environment["ATRIUM_INTERNAL_SECRET"] == installation["ATRIUM_INTERNAL_SECRET"]
    assert environment["PATH"] == "/bin"
    assert KAFKA_ADMIN_PASSWORD not in environment
    assert not [name for name in environment if name.endswith("_KAFKA_PASSWORD") and name != own]


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    installation = ensure_installation_secrets(tmp_path / "secrets.env")

    environment = service_environment(
        ServiceName.GATEWAY, installation, {"ATRIUM_JWT_SECRET": "brought-by-the-operator"}
    )

    assert environment["ATRIUM_JWT_SECRET"] == "brought-by-the-operator"


def run_atrium_token(email: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["token", email])
    return result.exit_code, result.stdout.strip(), result.stderr


def test_atrium_token_signs_with_the_installations_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_HOME", str(tmp_path))
    monkeypatch.delenv("ATRIUM_JWT_SECRET", raising=False)
    secret = ensure_installation_secrets(tmp_path / "secrets.env")["ATRIUM_JWT_SECRET"]

    status, token, _ = run_atrium_token("ada@example.com")

    assert status == 0
    assert jwt.decode(token, secret, algorithms=["HS256"])["email"] == "ada@example.com"


def test_atrium_token_refuses_to_sign_without_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATRIUM_HOME", str(tmp_path))
    monkeypatch.delenv("ATRIUM_JWT_SECRET", raising=False)

    status, token, error = run_atrium_token("ada@example.com")

    assert (status, token) == (1, "")
    assert "ATRIUM_JWT_SECRET is not set" in error
