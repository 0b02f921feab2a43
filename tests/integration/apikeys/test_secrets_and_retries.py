"""A key's secret is in the answers that made it and nowhere else: not in apikeys'
tables (the answers kept for retries are sealed), not in its events, not in its log.
A retried creation or rotation returns the same key; the gateway looks keys up by
their hash."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from contracts.permissions import Role
from shared import api_keys
from shared.settings import get_settings
from shared.testing import SignedAs
from tests.integration.apikeys.conftest import ApiKeys, Workspace

pytestmark = pytest.mark.integration


async def create_with_key(
    apikeys: ApiKeys, workspace: Workspace, retry_key: str, name: str = "CI"
) -> Any:
    return await apikeys.client.post(
        f"/v1/workspaces/{workspace.id}/api-keys",
        json={"name": name},
        headers={"Idempotency-Key": retry_key},
        auth=apikeys.as_(workspace),
    )


async def rotate_with_key(
    apikeys: ApiKeys, workspace: Workspace, key_id: str, retry_key: str
) -> Any:
    return await apikeys.client.post(
        f"/v1/workspaces/{workspace.id}/api-keys/{key_id}/rotate",
        params={"grace_seconds": 60},
        headers={"Idempotency-Key": retry_key},
        auth=apikeys.as_(workspace),
    )


async def test_a_retried_creation_returns_the_same_key_and_makes_no_other(
    apikeys: ApiKeys,
) -> None:
    workspace = await apikeys.workspace()

    first = await create_with_key(apikeys, workspace, "create-1")
    retry = await create_with_key(apikeys, workspace, "create-1")
    other_body = await create_with_key(apikeys, workspace, "create-1", name="other")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "idempotency-key-reused"
    assert list(await apikeys.keys(workspace)) == [first.json()["id"]]


async def test_a_retried_rotation_returns_the_same_new_key(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    old = await apikeys.created(workspace)

    first = await rotate_with_key(apikeys, workspace, old["id"], "rotate-1")
    retry = await rotate_with_key(apikeys, workspace, old["id"], "rotate-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert set(await apikeys.keys(workspace)) == {old["id"], first.json()["id"]}


async def test_the_secret_is_nowhere_but_in_the_answers_that_made_it(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    created = (await create_with_key(apikeys, workspace, "secret-1")).json()
    replayed = (await create_with_key(apikeys, workspace, "secret-1")).json()
    rotated = (await rotate_with_key(apikeys, workspace, created["id"], "secret-2")).json()
    rotated_again = (await rotate_with_key(apikeys, workspace, created["id"], "secret-2")).json()
    await apikeys.events.until(workspace.id, 3)
    secrets = {created["key"], rotated["key"]}
    assert {replayed["key"], rotated_again["key"]} == secrets
    # The random part alone, too: a secret stored without its prefix is still a secret.
    needles = secrets | {secret[4:-6] for secret in secrets}

    async with apikeys.admin_engine.connect() as connection:
        tables = (
            await connection.scalars(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'apikeys' ORDER BY table_name"
                )
            )
        ).all()
        stored = {
            table: "\n".join(
                (
                    await connection.scalars(
                        text(f'SELECT row_to_json(t)::text FROM apikeys."{table}" t')
                    )
                ).all()
            )
            for table in tables
        }

    assert {"api_keys", "idempotency_keys", "outbox"} <= set(tables)
    assert "sealed" in stored["idempotency_keys"]
    for table, rows in stored.items():
        for needle in needles:
            assert needle not in rows, f"a secret is stored in apikeys.{table}"
    published = "\n".join(envelope.model_dump_json() for envelope in apikeys.events.seen)
    log = apikeys.process.log_file.read_text(errors="replace")
    for needle in needles:
        assert needle not in published
        assert needle not in log
    assert created["id"] in stored["api_keys"], "the search looks where the keys are"


async def test_the_gateway_looks_a_key_up_by_its_hash(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace, rate_limit={"requests": 3, "period_seconds": 10})
    key_hash = api_keys.key_hash(key["key"], get_settings().apikey_pepper)

    found = await apikeys.look_up(key_hash)

    assert found.status_code == 200
    assert found.json() == {
        "key_id": key["id"],
        "workspace_id": str(workspace.id),
        "root_id": str(workspace.root_id),
        "suspended": False,
        "revoked_at": None,
        "expires_at": None,
        "rate_limit": {"requests": 3, "period_seconds": 10},
    }
    await apikeys.revoke(workspace, key["id"])
    assert (await apikeys.look_up(key_hash)).json()["revoked_at"] is not None
    assert (await apikeys.look_up("0" * 64)).status_code == 404
    assert (await apikeys.look_up(key_hash.upper())).status_code == 422
    assert (await apikeys.look_up(key["key"])).status_code == 422


async def test_only_the_gateway_may_look_keys_up(apikeys: ApiKeys) -> None:
    workspace = await apikeys.workspace()
    key = await apikeys.created(workspace)
    path = f"/internal/v1/api-keys/{api_keys.key_hash(key['key'], get_settings().apikey_pepper)}"

    as_person = await apikeys.client.get(path, auth=SignedAs("ada", role=Role.SUPER_ADMIN))
    as_key = await apikeys.client.get(path, auth=SignedAs(None, api_key_id=uuid.uuid4()))
    unsigned = await apikeys.client.get(path)

    assert as_person.status_code == 404
    assert as_key.status_code == 404
    assert unsigned.status_code == 401
