"""What the `atrium` command refuses before it asks the gateway anything: a usage
error exits 2 as Typer's own do, a command without a login or a token that cannot be
signed exits 1, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from clients.cli.app import app

WORKSPACE = "7b0e4a52-4b55-4a5e-9d41-7f0c6f6f4f11"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "atrium" / "config.toml"
    monkeypatch.setenv("ATRIUM_CONFIG", str(path))
    return path


def atrium(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_login_takes_an_email_or_a_token_not_both_nor_neither(config: Path) -> None:
    both = atrium("login", "--email", "ada@example.com", "--token", "x")
    neither = atrium("login")

    assert (both.exit_code, neither.exit_code) == (2, 2)
    assert "--email / --token" in both.stderr
    assert not config.exists()


def test_login_with_an_email_is_refused_where_no_secret_can_sign(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATRIUM_JWT_SECRET", raising=False)
    monkeypatch.setenv("ATRIUM_HOME", str(config.parent))

    refused = atrium("login", "--email", "ada@example.com")

    assert refused.exit_code == 1
    assert "atrium login --email cannot sign: ATRIUM_JWT_SECRET is not set" in refused.stderr
    assert not config.exists()


def test_a_command_without_a_login_asks_for_one(config: Path) -> None:
    refused = atrium("balances", WORKSPACE)

    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert "Not signed in: run `atrium login" in refused.stderr


def test_invite_takes_an_email_with_a_role_or_a_file(config: Path) -> None:
    neither = atrium("invite", WORKSPACE, "--role", "viewer")
    no_role = atrium("invite", WORKSPACE, "ada@example.com")

    assert (neither.exit_code, no_role.exit_code) == (2, 2)
    assert "give EMAIL or --from-csv FILE" in neither.stderr
    assert "needs a role" in no_role.stderr


def test_a_csv_file_without_the_columns_is_a_usage_error(config: Path, tmp_path: Path) -> None:
    rows = tmp_path / "people.csv"
    rows.write_text("name,address\nAda,ada@example.com\n")

    refused = atrium("invite", WORKSPACE, "--from-csv", str(rows))

    assert refused.exit_code == 2
    assert "needs a header line with the columns email, role" in refused.stderr


def test_a_role_that_does_not_exist_is_a_usage_error(config: Path) -> None:
    refused = atrium("members", "role", WORKSPACE, "someone", "wizard")

    assert refused.exit_code == 2
    assert "wizard" in refused.stderr


def test_allocate_needs_an_amount(config: Path) -> None:
    refused = atrium("allocate", WORKSPACE)

    assert refused.exit_code == 2
    assert "give at least one of --generative-credits" in refused.stderr
