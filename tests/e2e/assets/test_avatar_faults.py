"""An avatar's slot and fee, never one without the other, when the assets process is
killed (SIGKILL) at each step of creating or deleting an avatar: once it is started
again and its reconciler has run, the slots billing counts as used are the avatars
that exist, and the fees billing charged are the avatars that were created."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.assets.faults import AvatarStep
from tests.e2e.conftest import RunningSystem

from .conftest import Account, avatar_fees, ok, settled

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

SLOTS = 10


@pytest.fixture(scope="module")
def service_environment(service_environment: dict[str, str]) -> dict[str, str]:
    return {
        **service_environment,
        "ATRIUM_DEFAULT_PLAN_AVATAR_SLOTS": str(SLOTS),
        "ATRIUM_RECONCILE_SECONDS": "0.3",
        "ATRIUM_UNFINISHED_AFTER_SECONDS": "0.5",
    }


async def killed_at(
    system: RunningSystem, step: AvatarStep, request: Awaitable[httpx.Response]
) -> None:
    """Run `request` (a coroutine) against an assets process that kills itself at
    `step`, then start assets again, as it normally runs."""
    system.assets.stop()
    system.assets.start(extra_environment={"ATRIUM_ASSETS_KILL_AT": step.value})
    with contextlib.suppress(httpx.HTTPError):
        response = await request
        assert response.status_code >= 500, response.text
    system.assets.stop()  # reaps the killed process
    system.assets.start()


async def test_a_killed_avatar_creation_ends_with_its_slot_and_fee_or_neither(
    system: RunningSystem, gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    root = account.root_id

    for made, step in enumerate(
        (AvatarStep.BEFORE_CLAIM, AvatarStep.AFTER_CLAIM, AvatarStep.AFTER_COMMIT), start=1
    ):
        await killed_at(system, step, account.create(root, "avatar", name=f"Killed {step}"))
        await settled(admin_engine)

        avatars = await account.library(root, query="&kind=avatar")
        slots = await account.slots(root)
        fees = await avatar_fees(admin_engine, root)
        assert slots["used"] == len(avatars), step
        assert fees == len(avatars), step
        # billing was asked again with the same key and took the slot: the avatar is there.
        assert [avatar["name"] for avatar in avatars][-1] == f"Killed {step}"
        assert len(avatars) == made


async def test_a_killed_avatar_deletion_still_frees_the_slot_and_keeps_the_fee(
    system: RunningSystem, gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    kept = ok(await account.create(root, "avatar", name="Kept"), 201)
    doomed = ok(await account.create(root, "avatar", name="Doomed"), 201)
    path = f"/v1/workspaces/{root}/assets/{doomed['id']}"

    await killed_at(
        system,
        AvatarStep.BEFORE_RELEASE,
        gateway.delete(path, headers=account.owner.headers),
    )
    await settled(admin_engine)

    assert (await gateway.get(path, headers=account.owner.headers)).status_code == 404
    assert [avatar["id"] for avatar in await account.library(root)] == [kept["id"]]
    assert (await account.slots(root))["used"] == 1
    assert await avatar_fees(admin_engine, root) == 2
