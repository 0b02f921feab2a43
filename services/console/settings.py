"""The console's own settings (prefix `ATRIUM_CONSOLE_`). It is not one of the back
end's services: it has no schema, no Kafka login, and the gateway's readiness does not
wait for it."""

from __future__ import annotations

import secrets
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8080


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_CONSOLE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    gateway_url: str = Field(
        default="http://127.0.0.1:8000", description="The gateway the console speaks to."
    )
    development_sign_in: bool = Field(
        default=False,
        description="Offer sign-in by email alone, with a development token signed by "
        "ATRIUM_JWT_SECRET (on under `make run`; never in production).",
    )
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookies Secure (on behind HTTPS)."
    )
    session_key: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        description="Signs the forms' CSRF tokens; a new one at each start unless set "
        "(then a page opened before a restart must be reloaded before it can post).",
    )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@cache
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
