"""A form is accepted only with the CSRF token of the session that loaded it: a post
from elsewhere is refused before anything is sent to the gateway."""

from __future__ import annotations

import re

import httpx

from services.console.app import create_app
from services.console.session import SESSION_COOKIE
from services.console.settings import ConsoleSettings

UNREACHABLE_GATEWAY = "http://127.0.0.1:9"


def console() -> httpx.AsyncClient:
    """A browser of its own (its own cookies) on the console."""
    app = create_app(ConsoleSettings(gateway_url=UNREACHABLE_GATEWAY))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


async def test_a_post_without_the_sessions_token_is_refused() -> None:
    async with console() as browser:
        await browser.get("/sign-in")
        refused = await browser.post("/sign-in", data={"token": "a-token"})
        assert refused.status_code == 403
        assert "stale or forged" in refused.text


async def test_a_token_of_another_session_is_refused() -> None:
    async with console() as mine, console() as theirs:
        await mine.get("/sign-in")
        their_token = csrf_of((await theirs.get("/sign-in")).text)
        refused = await mine.post("/sign-in", data={"csrf": their_token, "token": "a-token"})
        assert refused.status_code == 403


async def test_the_sessions_own_token_lets_the_form_through_to_the_gateway() -> None:
    async with console() as browser:
        page = await browser.get("/sign-in")
        assert browser.cookies.get(SESSION_COOKIE)
        answered = await browser.post(
            "/sign-in", data={"csrf": csrf_of(page.text), "token": "a-token"}
        )
        assert answered.status_code == 502, "past the CSRF check, on to the unreachable gateway"
        assert UNREACHABLE_GATEWAY in answered.text
