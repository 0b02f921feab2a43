"""Where `atrium login` keeps the token, and that only its owner may read it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clients.cli import config


def test_the_file_is_in_the_users_config_folder_unless_atrium_config_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATRIUM_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.config_path() == tmp_path / "xdg" / "atrium" / "config.toml"

    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.config_path() == tmp_path / "home" / ".config" / "atrium" / "config.toml"

    monkeypatch.setenv("ATRIUM_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config.config_path() == tmp_path / "elsewhere.toml"


def test_a_new_login_replaces_a_readable_old_file_by_a_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "atrium" / "config.toml"
    monkeypatch.setenv("ATRIUM_CONFIG", str(path))
    path.parent.mkdir()
    path.write_text('url = "http://old"\ntoken = "old"\n')
    path.chmod(0o644)

    config.save(config.SignedIn(url="http://gateway:8000", token='a"b\\c'))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load() == config.SignedIn(url="http://gateway:8000", token='a"b\\c')
    assert [entry.name for entry in path.parent.iterdir()] == ["config.toml"]


def test_after_logout_there_is_no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATRIUM_CONFIG", str(tmp_path / "config.toml"))
    config.save(config.SignedIn(url="http://gateway", token="t"))

    assert config.forget() is True
    assert config.forget() is False
    with pytest.raises(config.NotSignedInError, match="atrium login"):
        config.load()
