"""Reads made at once for one page: a failure is shown, and no read is left running."""

from __future__ import annotations

import asyncio

import pytest

from clients.gateway import Problem
from services.console.reads import or_none, together


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
