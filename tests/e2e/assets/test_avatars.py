"""Avatars through the gateway: each takes one of its workspace's slots and pays the
avatar fee, both or neither; deleting one frees its slot and keeps the fee; eight
people racing for the last slot get one avatar and one fee between them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.permissions import Role

from .conftest import (
    AVATAR_FEE,
    PLAN_AVATAR_SLOTS,
    PLAN_CREDITS,
    Account,
    avatar_fees,
    ok,
    unfinished_avatars,
)

pytestmark = pytest.mark.e2e

PORTRAIT = {"image_url": "https://cdn.example.com/ada.png"}


async def test_an_avatar_takes_a_slot_and_the_fee_and_its_deletion_frees_the_slot_only(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    await account.staff()
    root = account.root_id
    creator = account.people[Role.CREATOR]

    avatar = ok(await account.create(root, "avatar", by=creator, properties=PORTRAIT), 201)

    assert avatar["kind"] == "avatar"
    assert await account.slots(root) == {
        "used": 1,
        "limit": PLAN_AVATAR_SLOTS,
        "credits": PLAN_CREDITS - AVATAR_FEE,
    }
    assert await avatar_fees(admin_engine, root) == 1
    path = f"/v1/workspaces/{root}/assets/{avatar['id']}"
    assert ok(await gateway.get(path, headers=account.people[Role.VIEWER].headers), 200) == avatar

    assert (await gateway.delete(path, headers=creator.headers)).status_code == 204

    assert (await gateway.get(path, headers=creator.headers)).status_code == 404
    assert await account.slots(root) == {
        "used": 0,
        "limit": PLAN_AVATAR_SLOTS,
        "credits": PLAN_CREDITS - AVATAR_FEE,
    }
    assert await avatar_fees(admin_engine, root) == 1
    assert await unfinished_avatars(admin_engine) == 0
    assert (await account.create(root, "avatar", by=account.people[Role.VIEWER])).status_code == 403


async def test_with_every_slot_taken_an_avatar_is_refused_and_nothing_is_charged(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    for n in range(PLAN_AVATAR_SLOTS):
        ok(await account.create(root, "avatar", name=f"Avatar {n}"), 201)
    before = await account.slots(root)

    refused = await account.create(root, "avatar", name="One too many")

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == "avatar-slot-limit"
    assert await account.slots(root) == before
    assert await avatar_fees(admin_engine, root) == PLAN_AVATAR_SLOTS
    assert len(await account.library(root)) == PLAN_AVATAR_SLOTS
    assert await unfinished_avatars(admin_engine) == 0
    # Other kinds take no slot.
    ok(await account.create(root, "voice"), 201)


async def test_without_credits_an_avatar_is_refused_and_its_slot_stays_free(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    client = await account.sub_workspace("Client")
    ok(
        await gateway.put(
            f"/v1/workspaces/{client}/allocations",
            json={"avatar_slots": 1},
            headers=account.owner.headers,
        ),
        200,
    )

    refused = await account.create(client, "avatar")

    assert refused.status_code == 402, refused.text
    assert refused.json()["type"] == "insufficient-credits"
    assert (await account.slots(client))["used"] == 0
    assert await avatar_fees(admin_engine, client) == 0
    assert await account.library(client) == []


async def test_a_retried_avatar_request_returns_the_first_avatar_and_charges_once(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    key = {"Idempotency-Key": "avatar-once"}

    first, second = await asyncio.gather(
        account.create(root, "avatar", properties=PORTRAIT, headers=key),
        account.create(root, "avatar", properties=PORTRAIT, headers=key),
    )
    third = await account.create(root, "avatar", properties=PORTRAIT, headers=key)

    assert first.status_code == second.status_code == third.status_code == 201
    assert first.json() == second.json() == third.json()
    assert await avatar_fees(admin_engine, root) == 1
    assert (await account.slots(root))["used"] == 1
    assert len(await account.library(root)) == 1
    reused = await account.create(root, "avatar", name="Other", headers=key)
    assert reused.status_code == 422, reused.text


async def test_eight_creations_racing_for_the_last_slot_make_one_avatar_and_one_fee(
    gateway: httpx.AsyncClient, admin_engine: AsyncEngine
) -> None:
    account = await Account.open(gateway)
    root = account.root_id
    for n in range(PLAN_AVATAR_SLOTS - 1):
        ok(await account.create(root, "avatar", name=f"Avatar {n}"), 201)

    answers = await asyncio.gather(
        *(account.create(root, "avatar", name=f"Racer {n}") for n in range(8))
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * 7, [answer.text for answer in answers]
    assert all(
        answer.json()["type"] == "avatar-slot-limit"
        for answer in answers
        if answer.status_code == 409
    )
    assert await avatar_fees(admin_engine, root) == PLAN_AVATAR_SLOTS
    assert await account.slots(root) == {
        "used": PLAN_AVATAR_SLOTS,
        "limit": PLAN_AVATAR_SLOTS,
        "credits": PLAN_CREDITS - PLAN_AVATAR_SLOTS * AVATAR_FEE,
    }
    avatars = await account.library(root, query="&kind=avatar")
    assert len(avatars) == PLAN_AVATAR_SLOTS
    assert await unfinished_avatars(admin_engine) == 0
