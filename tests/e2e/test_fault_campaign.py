"""The fault campaign, short: a seeded workload through the gateway from accounts of
its own while each service, Kafka and PostgreSQL are killed (SIGKILL) and started
again, in a seeded order; then, once the accounts have settled, nothing acknowledged
is lost or applied twice, no balance is below zero, no seat pool past its limit and
no tenant sees another's data (`bench.campaign.invariants`, on the campaign's
accounts only: the session's other tests share the cluster).

The session's PostgreSQL and Kafka are running again when the test ends, whatever
happened. The long campaign: `python -m bench.campaign --seconds 900`.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.campaign.acks import Write
from bench.campaign.chaos import Target
from bench.campaign.run import CAMPAIGN_SETTINGS, Plan, campaign, report
from bench.system import NO_RATE_LIMITS
from infra.sandbox import Sandbox
from tests.e2e.conftest import RunningSystem

pytestmark = [pytest.mark.e2e, pytest.mark.own_system]

PLAN = Plan(
    seed=20261202,
    seconds=25,
    injections=len(Target),
    accounts=2,
    workers=4,
    at_once=len(Target),
    calm_seconds=8,
)
"""The seven kills overlap for most of the run; the 8 calm seconds after the last
recovery make sure that every kind of write below had its chance on the whole system."""
MAIN_WRITES = (
    Write.SPEND,
    Write.PURCHASE,
    Write.ALLOCATION,
    Write.INVITATION,
    Write.ACCEPTANCE,
    Write.SUB_WORKSPACE_CREATED,
    Write.KEY_CREATED,
    Write.ASSET_CREATED,
)
"""Writes the short run must have had acknowledged. Shares need assets made first and
come later in a run; they are checked whenever acknowledged, and the long run has many."""


@pytest.fixture(scope="module")
def service_environment() -> dict[str, str]:
    return {**NO_RATE_LIMITS, **CAMPAIGN_SETTINGS}


async def test_nothing_acknowledged_is_lost_or_doubled_while_processes_are_killed(
    system: RunningSystem, atrium: Sandbox, admin_engine: AsyncEngine
) -> None:
    try:
        outcome = await campaign(
            PLAN,
            gateway_url=system.gateway.url,
            services=system.by_service(),
            postgres=atrium.postgres,
            kafka=atrium.kafka,
            settings=atrium.settings,
        )
    finally:
        atrium.postgres.start()
        atrium.kafka.start()
        # Its pooled connections died with the killed PostgreSQL.
        await admin_engine.dispose()
    print(report(outcome))

    assert {injection.target for injection in outcome.injections} == set(Target)
    assert [i for i in outcome.injections if i.recovery_seconds is None] == []
    assert outcome.unsettled is None
    assert outcome.violations == []
    acknowledged = Counter(ack.write for ack in outcome.workload.acks.answered)
    assert {write: acknowledged[write] for write in MAIN_WRITES if not acknowledged[write]} == {}
    with_a_key = [ack for ack in outcome.workload.acks.answered if "api_key_id" in ack.detail]
    assert with_a_key
