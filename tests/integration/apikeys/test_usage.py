"""Usage counted from the gateway's batches and billing's transactions: per key and
per workspace per UTC day, each event once however often Kafka delivers it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.permissions import Role
from shared.testing import eventually
from tests.integration.apikeys.conftest import ApiKeys, Workspace

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)


async def usage_items(
    apikeys: ApiKeys, workspace: Workspace, key_id: str | None = None, **params: str
) -> list[dict[str, Any]]:
    response = await apikeys.usage(workspace, key_id, **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def until_usage(
    apikeys: ApiKeys,
    workspace: Workspace,
    expected: list[dict[str, Any]],
    key_id: str | None = None,
) -> None:
    async def probe() -> bool | None:
        return True if await usage_items(apikeys, workspace, key_id) == expected else None

    await eventually(probe, timeout=20, what=f"usage {expected}")


def day(moment: datetime, requests: int, errors: int, credits_spent: int) -> dict[str, Any]:
    return {
        "date": moment.date().isoformat(),
        "requests": requests,
        "errors": errors,
        "credits_spent": credits_spent,
    }


async def test_requests_are_counted_per_key_and_per_workspace_per_day_once(
    apikeys: ApiKeys,
) -> None:
    workspace = await apikeys.workspace()
    first = (await apikeys.created(workspace))["id"]
    second = (await apikeys.created(workspace))["id"]
    one, two = uuid.UUID(first), uuid.UUID(second)
    batch = apikeys.requests_recorded(
        workspace,
        (one, 201, YESTERDAY),
        (one, 402, TODAY),
        (one, 200, TODAY + timedelta(minutes=5)),
        (two, 500, TODAY),
    )

    await apikeys.gateway.send(batch)
    await apikeys.gateway.send(batch)  # Kafka delivers it again
    marker = apikeys.requests_recorded(workspace, (two, 200, TODAY))
    await apikeys.gateway.send(marker)  # after both, in the same partition

    await until_usage(apikeys, workspace, [day(YESTERDAY, 1, 0, 0), day(TODAY, 4, 2, 0)])
    assert await usage_items(apikeys, workspace, first) == [
        day(YESTERDAY, 1, 0, 0),
        day(TODAY, 2, 1, 0),
    ]
    assert await usage_items(apikeys, workspace, second) == [day(TODAY, 2, 1, 0)]
    keys = await apikeys.keys(workspace)
    assert datetime.fromisoformat(keys[first]["last_used_at"]) == TODAY + timedelta(minutes=5)
    assert datetime.fromisoformat(keys[second]["last_used_at"]) == TODAY


async def test_credits_spent_with_a_key_are_counted_once(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = (await apikeys.created(workspace))["id"]
    spend = apikeys.spent_with_key(workspace, uuid.UUID(key), 40)
    other_key = (await apikeys.created(workspace))["id"]

    await apikeys.billing.send(spend)
    await apikeys.billing.send(spend)
    await apikeys.billing.send(apikeys.spent_with_key(workspace, uuid.UUID(other_key), 2))

    await until_usage(apikeys, workspace, [day(TODAY, 0, 0, 42)])
    assert await usage_items(apikeys, workspace, key) == [day(TODAY, 0, 0, 40)]
    assert await usage_items(apikeys, workspace, other_key) == [day(TODAY, 0, 0, 2)]


async def test_a_parents_usage_is_its_own_only(apikeys: ApiKeys) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    root_key = uuid.UUID((await apikeys.created(root))["id"])
    sub_key = uuid.UUID((await apikeys.created(sub))["id"])

    await apikeys.gateway.send(apikeys.requests_recorded(sub, (sub_key, 200, TODAY)))
    await apikeys.billing.send(apikeys.spent_with_key(sub, sub_key, 9))
    await apikeys.gateway.send(apikeys.requests_recorded(root, (root_key, 200, TODAY)))

    await until_usage(apikeys, root, [day(TODAY, 1, 0, 0)])
    await until_usage(apikeys, sub, [day(TODAY, 1, 0, 9)])


async def test_a_batch_naming_another_workspaces_key_counts_it_nowhere(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    other = await apikeys.workspace()
    own = uuid.UUID((await apikeys.created(workspace))["id"])
    foreign = (await apikeys.created(other))["id"]

    await apikeys.gateway.send(
        apikeys.requests_recorded(workspace, (uuid.UUID(foreign), 200, TODAY), (own, 200, TODAY))
    )

    await until_usage(apikeys, workspace, [day(TODAY, 1, 0, 0)])
    assert await usage_items(apikeys, other, foreign) == []


async def test_usage_is_read_for_the_days_asked(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = uuid.UUID((await apikeys.created(workspace))["id"])
    long_ago = TODAY - timedelta(days=40)
    await apikeys.gateway.send(
        apikeys.requests_recorded(
            workspace, (key, 200, long_ago), (key, 200, YESTERDAY), (key, 200, TODAY)
        )
    )
    await until_usage(apikeys, workspace, [day(YESTERDAY, 1, 0, 0), day(TODAY, 1, 0, 0)])

    yesterday = YESTERDAY.date().isoformat()
    assert await usage_items(apikeys, workspace, **{"from": yesterday, "to": yesterday}) == [
        day(YESTERDAY, 1, 0, 0)
    ]
    assert await usage_items(
        apikeys, workspace, str(key), **{"from": long_ago.date().isoformat()}
    ) == [day(long_ago, 1, 0, 0), day(YESTERDAY, 1, 0, 0), day(TODAY, 1, 0, 0)]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-30"},
        {"from": "2026-12-01T00:00:00"},
        {"to": "0"},
        {"to": "yesterday"},
    ],
)
async def test_a_bad_usage_period_is_a_422(apikeys: ApiKeys, params: dict[str, str]) -> None:
    workspace = await apikeys.workspace()
    key = (await apikeys.created(workspace))["id"]

    for key_id in (None, key):
        response = await apikeys.usage(workspace, key_id, **params)
        assert response.status_code == 422, response.text


async def test_a_period_of_any_length_may_be_read_and_an_inverted_one_is_empty(
    apikeys: ApiKeys,
) -> None:
    """The answer has a row per day the keys were used, so a period may be as long as
    dates go; a period whose `from` is after its `to` holds no day (as billing's)."""
    workspace = await apikeys.workspace()
    key = uuid.UUID((await apikeys.created(workspace))["id"])
    await apikeys.gateway.send(apikeys.requests_recorded(workspace, (key, 200, TODAY)))
    await until_usage(apikeys, workspace, [day(TODAY, 1, 0, 0)])
    today, yesterday = TODAY.date().isoformat(), YESTERDAY.date().isoformat()

    for key_id in (None, str(key)):
        assert await usage_items(
            apikeys, workspace, key_id, **{"from": "0001-01-01", "to": "9999-12-31"}
        ) == [day(TODAY, 1, 0, 0)]
        assert await usage_items(apikeys, workspace, key_id, to="0001-01-05") == []
        assert (
            await usage_items(apikeys, workspace, key_id, **{"from": today, "to": yesterday}) == []
        )


async def test_usage_while_api_access_is_off_is_for_a_super_admin_from_above(
    apikeys: ApiKeys,
) -> None:
    root = await apikeys.workspace()
    sub = await apikeys.workspace(parent=root)
    key = (await apikeys.created(sub))["id"]
    await apikeys.set_api_access(sub, False)
    await apikeys.events.until(sub.id, 2)

    for path in (
        f"/v1/workspaces/{sub.id}/api-usage",
        f"/v1/workspaces/{sub.id}/api-keys/{key}/usage",
    ):
        own = await apikeys.client.get(path, auth=apikeys.as_(sub, role=Role.DEVELOPER))
        from_above = await apikeys.client.get(
            path, auth=apikeys.as_(sub, ancestor_super_admin=True)
        )
        assert own.status_code == 409
        assert own.json()["type"] == "api-access-disabled"
        assert from_above.status_code == 200


async def test_creators_do_not_read_api_usage(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()

    response = await apikeys.client.get(
        f"/v1/workspaces/{workspace.id}/api-usage", auth=apikeys.as_(workspace, role=Role.CREATOR)
    )

    assert response.status_code == 403
