"""Where `atrium login` keeps the gateway's URL and the caller's token: a TOML file in
the user's config folder (`$XDG_CONFIG_HOME/atrium/config.toml`, `~/.config` by
default; `ATRIUM_CONFIG` names another path), readable by its owner only, since the
token is as good as the person's password until it expires."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

PRIVATE = 0o600


class NotSignedInError(RuntimeError):
    """No usable configuration: the person has to run `atrium login` first."""


@dataclass(frozen=True)
class SignedIn:
    url: str
    token: str


def config_path() -> Path:
    if explicit := os.environ.get("ATRIUM_CONFIG"):
        return Path(explicit)
    folder = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(folder) / "atrium" / "config.toml"


def load() -> SignedIn:
    path = config_path()
    try:
        stored = tomllib.loads(path.read_text())
    except FileNotFoundError:
        msg = "Not signed in: run `atrium login --email EMAIL` or `atrium login --token TOKEN`."
        raise NotSignedInError(msg) from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        msg = f"{path} cannot be read ({error}): run `atrium login` again."
        raise NotSignedInError(msg) from error
    url, token = stored.get("url"), stored.get("token")
    if not isinstance(url, str) or not isinstance(token, str):
        msg = f"{path} holds no url and token: run `atrium login` again."
        raise NotSignedInError(msg)
    return SignedIn(url, token)


def stored_url() -> str | None:
    """The URL of the last login, which a new login keeps unless told another."""
    try:
        return load().url
    except NotSignedInError:
        return None


def save(signed_in: SignedIn) -> Path:
    """Write the file private from its first byte (never world-readable, not even for an
    instant), and replace any older one whole."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = path.with_name(f".{path.name}.new")
    fresh.unlink(missing_ok=True)
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(descriptor, "w") as file:
        # A JSON string is a valid TOML basic string: the same quotes and escapes.
        file.write(f"url = {json.dumps(signed_in.url)}\ntoken = {json.dumps(signed_in.token)}\n")
    fresh.replace(path)
    return path


def forget() -> bool:
    """Remove the stored token; whether there was one."""
    path = config_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
