"""Bad input gets a 4xx problem and changes nothing: text PostgreSQL cannot store,
names with nothing to see, images on private hosts, and cursors this API never gave
out."""

from __future__ import annotations

import base64

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.identity import models

from .conftest import create_root, create_sub, invite, join, person

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


def cursor_of(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


async def workspaces_named(admin_engine: AsyncEngine, name: str) -> int:
    async with admin_engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).where(models.workspaces.c.name == name)
        )
    return int(count or 0)


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"name": "\\ud800"}',
        b'{"name": "Acme \\udfff"}',
        b'{"name": "a\\u0000b"}',
    ],
)
async def test_a_name_postgresql_cannot_store_is_refused_not_a_server_error(
    client: httpx.AsyncClient, raw_body: bytes
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    child_id = (await create_sub(client, admin, root_id)).json()["id"]

    attempts = [
        await client.post(
            "/v1/workspaces",
            content=raw_body,
            headers={"content-type": "application/json"},
            auth=admin.auth,
        ),
        await client.patch(
            f"/v1/workspaces/{child_id}",
            content=raw_body,
            headers={"content-type": "application/json"},
            auth=admin.auth,
        ),
    ]

    for response in attempts:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert [error["field"] for error in response.json()["errors"]] == ["name"]


@pytest.mark.parametrize(
    "name",
    [
        "\u3164",  # HANGUL FILLER
        "\u3164\u3164 \u3164",
        "\u2800\u2800",  # BRAILLE PATTERN BLANK
        "\u0301\u0302",  # combining marks with nothing to sit on
        "\ue000\uf8ff",  # private use
        "\u115f\u1160\uffa0",  # Hangul choseong and jungseong fillers, halfwidth filler
        "\u034f",  # COMBINING GRAPHEME JOINER
        "\ufe0f\ufe0e",  # variation selectors
    ],
)
async def test_a_name_with_nothing_visible_is_refused(
    client: httpx.AsyncClient, admin_engine: AsyncEngine, name: str
) -> None:
    admin = person("admin")

    response = await client.post("/v1/workspaces", json={"name": name}, auth=admin.auth)

    assert response.status_code == 422, response.text
    assert await workspaces_named(admin_engine, name.strip()) == 0


@pytest.mark.parametrize(
    "image_url",
    [
        "https://user:secret@cdn.example.com/a.png",
        "https://user@cdn.example.com/a.png",
        "https://localhost/a.png",
        "https://LOCALHOST./a.png",
        "https://127.0.0.1/a.png",
        "https://127.1.2.3/a.png",
        "https://2130706433/a.png",
        "https://10.0.0.8/a.png",
        "https://172.16.0.1/a.png",
        "https://192.168.1.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/a.png",
        "https://0.0.0.0/a.png",
        "https://[::1]/a.png",
        "https://[fc00::1]/a.png",
        "https://[fd12:3456::1]/a.png",
        "https://[fe80::1]/a.png",
        "https://[::ffff:127.0.0.1]/a.png",
        "https://metadata.google.internal/a.png",
        "https://printer.local/a.png",
        "https://api.localhost/a.png",
    ],
)
async def test_an_image_with_credentials_or_on_a_private_host_is_refused(
    client: httpx.AsyncClient, image_url: str
) -> None:
    admin = person("admin")

    response = await client.post(
        "/v1/workspaces", json={"name": "Acme", "image_url": image_url}, auth=admin.auth
    )

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["image_url"]


async def test_an_image_on_a_public_host_is_kept(client: httpx.AsyncClient) -> None:
    admin = person("admin")

    response = await client.post(
        "/v1/workspaces",
        json={"name": "Acme", "image_url": "https://cdn.example.com/logo.png"},
        auth=admin.auth,
    )

    assert response.status_code == 201
    assert response.json()["image_url"] == "https://cdn.example.com/logo.png"


@pytest.mark.parametrize(
    "cursor",
    [
        "WyJhYmMiXQ==",  # ["abc"]
        "W3t9XQ==",  # [{}]
        "WzFlNDAwXQ==",  # [1e400]
        cursor_of("[true]"),
        cursor_of("[-1]"),
        cursor_of("[1.5]"),
        cursor_of("[]"),
        cursor_of("[1, 2]"),
        cursor_of("{}"),
        cursor_of('"abc"'),
        "not base64!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_members_cursor_this_api_never_gave_out_is_refused(
    client: httpx.AsyncClient, cursor: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.get(
        f"/v1/workspaces/{root_id}/members", params={"cursor": cursor}, auth=admin.auth
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    "cursor",
    [
        cursor_of('["2026-01-01T00:00:00+00:00"]'),
        cursor_of('["yesterday", "5f0c0c5e-0000-4000-8000-000000000000"]'),
        cursor_of('["2026-01-01T00:00:00+00:00", "not-a-uuid"]'),
        cursor_of('[1e400, "5f0c0c5e-0000-4000-8000-000000000000"]'),
        cursor_of('[["x"], {}]'),
    ],
)
async def test_a_workspaces_cursor_this_api_never_gave_out_is_refused(
    client: httpx.AsyncClient, cursor: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    mine = await client.get("/v1/workspaces", params={"cursor": cursor}, auth=admin.auth)
    children = await client.get(
        f"/v1/workspaces/{root_id}/sub-workspaces", params={"cursor": cursor}, auth=admin.auth
    )

    assert mine.status_code == children.status_code == 422


async def test_the_cursors_this_api_gives_out_page_through_every_list(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    children = {
        (await create_sub(client, admin, root_id, name=f"S{i}")).json()["id"] for i in range(3)
    }
    for i in range(2):
        await join(client, admin, root_id, person(f"m{i}"))

    async def every_page(path: str) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        cursor = None
        while True:
            params = {"limit": 1} | ({} if cursor is None else {"cursor": cursor})
            page = await client.get(path, params=params, auth=admin.auth)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items

    assert {c["id"] for c in await every_page(f"/v1/workspaces/{root_id}/sub-workspaces")} == (
        children
    )
    assert len(await every_page(f"/v1/workspaces/{root_id}/members")) == 3


@pytest.mark.parametrize("limit", ["%C2%B2", "%EF%BC%92", "-1", "0", "201", "1e1", "%00"])
async def test_a_page_size_that_is_not_a_plain_number_in_range_is_refused(
    client: httpx.AsyncClient, limit: str
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)

    response = await client.get(f"/v1/workspaces/{root_id}/members?limit={limit}", auth=admin.auth)

    assert response.status_code == 422, response.text


async def test_a_member_id_with_a_nul_is_not_found_rather_than_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    admin = person("admin")
    root_id = await create_root(client, admin)
    await invite(client, admin, root_id, person("someone"))

    response = await client.delete(f"/v1/workspaces/{root_id}/members/a%00b", auth=admin.auth)

    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
