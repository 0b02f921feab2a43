"""The workspace tree as the console and the CLI read it, against a gateway played by a
mock transport; and the reads made at once that it is made of."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from clients.gateway import Gateway, Problem
from clients.tree import descendants, flattened, or_none, together, workspace_tree

PROBLEM = "application/problem+json"


async def test_when_one_read_fails_the_others_are_cancelled_before_the_failure_is_shown() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def failing() -> None:
        raise Problem(502, "unreachable", "Gateway unreachable", "no answer")

    with pytest.raises(Problem):
        await together(slow(), failing())
    assert cancelled.is_set()


async def test_a_figure_the_caller_may_not_read_is_missing_and_a_failure_is_shown() -> None:
    async def answer(status: int) -> None:
        raise Problem(status, "some-type", "Title", "detail")

    assert await or_none(answer(403)) is None
    with pytest.raises(Problem):
        await or_none(answer(429))


def workspace(workspace_id: str, parent_id: str | None, **more: Any) -> dict[str, Any]:
    return {"id": workspace_id, "parent_id": parent_id, "name": workspace_id, **more}


SEATS = {"used": 1, "pending": 0, "limit": 5}
BALANCES = {"generative_credits": {"balance": 7}, "api_credits": {"balance": 0}}


def account_api(refused: dict[str, int]) -> Gateway:
    """A root `r` with children `a` (which has `a1`) and `b`. The caller is a Super
    Admin of `r` and a viewer of `x`, the child of a root they cannot see; the paths
    in `refused` answer with that status."""
    children = {"r": ["a", "b"], "a": ["a1"], "b": [], "a1": [], "x": []}
    parents = {"a": "r", "b": "r", "a1": "a", "x": "hidden", "r": None}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in refused:
            status = refused[path]
            body = {"type": "t", "title": "t", "status": status, "detail": "no"}
            return httpx.Response(status, json=body, headers={"content-type": PROBLEM})
        parts = path.split("/")
        if path == "/v1/workspaces":
            mine = [
                workspace("r", None, role="super_admin"),
                workspace("x", "hidden", role="viewer"),
            ]
            return httpx.Response(200, json={"items": mine, "next_cursor": None})
        if len(parts) == 4:
            return httpx.Response(200, json=workspace(parts[3], parents[parts[3]]))
        what = parts[4]
        if what == "sub-workspaces":
            items = [workspace(child, parts[3]) for child in children[parts[3]]]
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        return httpx.Response(200, json=SEATS if what == "seats" else BALANCES)

    return Gateway("token", transport=httpx.MockTransport(answer))


async def test_the_tree_holds_every_workspace_under_the_callers_topmost_ones() -> None:
    tops = await workspace_tree(account_api({}))

    assert [node.id for node in flattened(tops)] == ["r", "a", "a1", "b", "x"]
    assert [(node.id, node.role) for node in flattened(tops)] == [
        ("r", "super_admin"),
        ("a", "super_admin"),
        ("a1", "super_admin"),
        ("b", "super_admin"),
        ("x", "viewer"),
    ]
    assert tops[0].as_json()["sub_workspaces"][0]["sub_workspaces"][0] == {
        **workspace("a1", "a"),
        "seats": SEATS,
        "balances": BALANCES,
        "sub_workspaces": [],
    }


async def test_a_figure_the_caller_may_not_read_is_missing_and_the_rest_is_shown() -> None:
    gateway = account_api(
        {"/v1/workspaces/a/balances": 403, "/v1/workspaces/b/sub-workspaces": 404}
    )

    tops = await workspace_tree(gateway, under="r")

    [root] = tops
    a, b = root.children
    assert (a.seats, a.balances, [child.id for child in a.children]) == (SEATS, None, ["a1"])
    assert (b.balances, b.children) == (BALANCES, [])


async def test_a_failure_is_raised_not_shown_as_missing() -> None:
    with pytest.raises(Problem) as failed:
        await workspace_tree(account_api({"/v1/workspaces/a1/seats": 502}))

    assert failed.value.status == 502


async def test_a_tree_under_a_workspace_out_of_reach_is_refused() -> None:
    with pytest.raises(Problem) as refused:
        await workspace_tree(account_api({"/v1/workspaces/hidden": 404}), under="hidden")

    assert refused.value.status == 404


async def test_the_descendants_come_in_reading_order() -> None:
    found = await descendants(account_api({}), "r")

    assert [each["id"] for each in found] == ["a", "a1", "b"]
