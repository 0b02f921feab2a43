"""The gateway's access decisions follow identity's events over real Kafka, whatever
order the two topics deliver them in, and survive a restart."""

from __future__ import annotations

import uuid

import pytest

from contracts.events.identity import BillingMode, WorkspaceDeleted
from contracts.permissions import Role
from services.gateway.app import create_app
from services.gateway.authz import Access, effective_access
from shared.settings import Settings
from tests.unit.gateway.support import gateway_settings

from .conftest import Identity, LiveGateway

pytestmark = pytest.mark.integration


async def test_a_member_gets_in_when_they_join_and_not_after_they_are_removed(
    live: LiveGateway, identity: Identity
) -> None:
    root = uuid.uuid4()
    assert await live.status("ann", root) == 404

    await identity.workspace_created(root, parent_id=None, root_id=root)
    await identity.member_joined(root, "ann", Role.SUPER_ADMIN, root_id=root)
    await live.until_status("ann", root, 200)
    assert live.upstream.forwarded[-1].principal.role is Role.SUPER_ADMIN

    await identity.member_removed(root, "ann", Role.SUPER_ADMIN, root_id=root)
    await live.until_status("ann", root, 404)


async def test_a_membership_that_arrives_before_its_workspace_is_kept(
    live: LiveGateway, identity: Identity
) -> None:
    root, child = uuid.uuid4(), uuid.uuid4()
    await identity.workspace_created(root, parent_id=None, root_id=root)
    await identity.member_joined(root, "root-admin", Role.SUPER_ADMIN, root_id=root)
    await identity.member_joined(child, "cleo", Role.CREATOR, root_id=root)
    await live.until_status("cleo", child, 200)
    # Without its workspace the gateway cannot know that the child is below the root.
    assert await live.status("root-admin", child) == 404

    await identity.workspace_created(child, parent_id=root, root_id=root)

    await live.until_status("root-admin", child, 200)
    vouched = live.upstream.forwarded[-1].principal
    assert (vouched.role, vouched.ancestor_super_admin) == (Role.SUPER_ADMIN, True)
    assert await live.status("cleo", root) == 404


async def test_a_deleted_workspace_is_not_found_for_anyone(
    live: LiveGateway, identity: Identity
) -> None:
    root = uuid.uuid4()
    await identity.workspace_created(root, parent_id=None, root_id=root)
    await identity.member_joined(root, "dan", Role.SUPER_ADMIN, root_id=root)
    await live.until_status("dan", root, 200)

    await identity.publish(
        WorkspaceDeleted(
            id=root,
            parent_id=None,
            root_id=root,
            billing_root_id=root,
            billing_mode=BillingMode.OWN,
        ),
        root_id=root,
    )

    await live.until_status("dan", root, 404)


async def test_the_projection_is_rebuilt_from_the_tables_after_a_restart(
    live: LiveGateway, identity: Identity, settings: Settings
) -> None:
    root, child = uuid.uuid4(), uuid.uuid4()
    await identity.workspace_created(root, parent_id=None, root_id=root)
    await identity.workspace_created(child, parent_id=root, root_id=root)
    await identity.member_joined(root, "eve", Role.SUPER_ADMIN, root_id=root)
    await identity.member_joined(child, "fay", Role.VIEWER, root_id=root)
    await live.until_status("fay", child, 200)
    await live.until_status("eve", child, 200)

    restarted = create_app(
        gateway_settings(
            live.upstream.url,
            database_url=settings.database_url,
            kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
            gateway_kafka_password=settings.gateway_kafka_password,
        )
    ).state.gateway
    await restarted.projection_changes.start()
    try:
        assert effective_access(restarted.projection, "eve", child) == Access(
            child, Role.SUPER_ADMIN, True
        )
    finally:
        await restarted.projection_changes.stop()
        await restarted.runtime.database.dispose()

    assert effective_access(restarted.projection, "fay", child) == Access(child, Role.VIEWER, False)
    assert effective_access(restarted.projection, "fay", root) is None
