"""One fault campaign on a running system: the workload from several accounts while
the chaos kills and restarts processes, then, with nothing killed any more, the
campaign's accounts left to settle and every guarantee checked against what the
workload saw acknowledged (`bench.campaign.invariants`).

The same campaign runs long from `python -m bench.campaign` (a sandbox of its own)
and short in the tests (the test session's sandbox and system).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bench.campaign.chaos import Chaos, Injection, Probe, Target
from bench.campaign.invariants import Violation, settle, violations
from bench.campaign.workload import Workload
from bench.system import Person, percentile
from infra.local_kafka import LocalKafka
from infra.local_postgres import LocalPostgres
from shared.settings import ServiceName, Settings
from shared.testing import ServiceProcess

SETTLE_TIMEOUT_SECONDS = 120.0

CAMPAIGN_SETTINGS = {
    "ATRIUM_DEFAULT_PLAN_SEATS": "12",
    "ATRIUM_DEFAULT_PLAN_AVATAR_SLOTS": "6",
    "ATRIUM_DEFAULT_PLAN_GENERATIVE_CREDITS": "3000",
    "ATRIUM_DEFAULT_PLAN_API_CREDITS": "2000",
    "ATRIUM_RECONCILE_SECONDS": "1",
    "ATRIUM_UNFINISHED_AFTER_SECONDS": "2",
}
"""The services' settings for a campaign: plans small enough that seats, slots and
credits run out now and then (the limits are part of what is checked), and the assets
reconciler quick to finish what a killed process left pending."""


@dataclass(frozen=True)
class Plan:
    seed: int
    seconds: float
    """How long the workload runs (longer if the injections take longer)."""
    injections: int
    accounts: int = 3
    workers: int = 12
    at_once: int = 1
    """Injections under way together at most (each lasts until the system serves
    again): more than one puts more kills in a run and kills during a recovery."""
    calm_seconds: float = 0.0
    """How long the workload goes on once the last injection has recovered, nothing
    killed any more: what it writes then shows the system whole again, and a short run
    whose outages overlapped most of its time still gets every kind of write done."""


@dataclass
class Outcome:
    plan: Plan
    workload: Workload
    injections: list[Injection]
    root_ids: list[str]
    unsettled: str | None
    """What was still moving when settling timed out; None once settled."""
    violations: list[Violation]
    seconds: float

    @property
    def failed(self) -> bool:
        """A guarantee broken, or a system that did not come back or did not settle."""
        unrecovered = any(i.recovery_seconds is None for i in self.injections)
        return bool(self.violations) or self.unsettled is not None or unrecovered

    def figures(self) -> dict[str, Any]:
        return {
            "seed": self.plan.seed,
            "planned_seconds": self.plan.seconds,
            "seconds": round(self.seconds, 1),
            "accounts": self.plan.accounts,
            "workers": self.plan.workers,
            "at_once": self.plan.at_once,
            "calm_seconds": self.plan.calm_seconds,
            "injections_by_kind": dict(
                sorted(Counter(i.target.value for i in self.injections).items())
            ),
            "recovery_seconds_by_kind": _spread(self.injections, "recovery_seconds"),
            "restart_seconds_by_kind": _spread(self.injections, "restart_seconds"),
            "unrecovered": [
                f"{i.target.value} at {i.at:.1f}s"
                for i in self.injections
                if i.recovery_seconds is None
            ],
            "operations": self.workload.tally.figures(),
            "acknowledged_writes": dict(
                sorted(Counter(ack.write.value for ack in self.workload.acks.answered).items())
            ),
            "unsettled": self.unsettled,
            "violations": [{"invariant": v.invariant, "detail": v.detail} for v in self.violations],
            "injections": [
                {
                    "target": i.target.value,
                    "at": round(i.at, 1),
                    "detail": i.detail,
                    "overlapped": i.overlapped,
                    "restart_seconds": None
                    if i.restart_seconds is None
                    else round(i.restart_seconds, 2),
                    "recovery_seconds": None
                    if i.recovery_seconds is None
                    else round(i.recovery_seconds, 2),
                }
                for i in self.injections
            ],
        }


def _spread(injections: list[Injection], measure: str) -> dict[str, dict[str, float]]:
    """Per target: how many samples, p50, p99 and max of `measure`, in seconds."""
    spread = {}
    for target in Target:
        samples = [
            value
            for i in injections
            if i.target is target and (value := getattr(i, measure)) is not None
        ]
        if samples:
            spread[target.value] = {
                "n": len(samples),
                "p50": round(percentile(samples, 50), 2),
                "p99": round(percentile(samples, 99), 2),
                "max": round(max(samples), 2),
            }
    return spread


async def campaign(
    plan: Plan,
    *,
    gateway_url: str,
    services: Mapping[ServiceName, ServiceProcess],
    postgres: LocalPostgres,
    kafka: LocalKafka,
    settings: Settings,
) -> Outcome:
    """Run `plan` on the system; PostgreSQL, Kafka and every service are running again
    when it returns or raises."""
    began = time.monotonic()
    limits = httpx.Limits(max_connections=plan.workers * 2, max_keepalive_connections=plan.workers)
    async with httpx.AsyncClient(base_url=gateway_url, limits=limits) as gateway:
        workload = Workload(
            gateway, settings, seed=plan.seed, accounts=plan.accounts, workers=plan.workers
        )
        await workload.open_accounts()
        probe = Probe(gateway, Person.new("probe", settings), workload.acks)
        await probe.open()
        chaos = Chaos(services, postgres, kafka, probe, random.Random(f"{plan.seed}-chaos"))
        stop = asyncio.Event()
        working = asyncio.create_task(workload.run(stop))
        try:
            await asyncio.gather(
                chaos.run(plan.injections, plan.seconds, at_once=plan.at_once),
                asyncio.sleep(plan.seconds),
            )
            await asyncio.sleep(plan.calm_seconds)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await working
            await asyncio.to_thread(chaos.ensure_running)
    root_ids = [*workload.root_ids, probe.root_id]
    unsettled = None
    try:
        await settle(settings.database_url, root_ids, timeout=SETTLE_TIMEOUT_SECONDS)
    except TimeoutError as still_moving:
        unsettled = str(still_moving)
    found = await violations(settings.database_url, root_ids, workload.acks.writes)
    return Outcome(
        plan, workload, chaos.injections, root_ids, unsettled, found, time.monotonic() - began
    )


def report(outcome: Outcome) -> str:
    """The figures as a reader wants them first: per kind, what was killed and how soon
    the system served again; per operation, what was attempted and acknowledged."""
    figures = outcome.figures()
    lines = [
        f"seed {outcome.plan.seed}: {len(outcome.injections)} injections in "
        f"{figures['seconds']} s, {outcome.plan.accounts} accounts, {outcome.plan.workers} workers",
        "",
        f"{'killed':<10}{'times':>6}{'recovery p50':>14}{'p99':>8}{'max':>8}{'restart p50':>13}",
    ]
    recovery, restart = figures["recovery_seconds_by_kind"], figures["restart_seconds_by_kind"]
    for target, times in figures["injections_by_kind"].items():
        back = recovery.get(target, {})
        lines.append(
            f"{target:<10}{times:>6}{back.get('p50', '-'):>14}{back.get('p99', '-'):>8}"
            f"{back.get('max', '-'):>8}{restart.get(target, {}).get('p50', '-'):>13}"
        )
    operations = figures["operations"]
    lines += ["", f"{'operation':<20}{'attempted':>10}{'acked':>8}  refused / failed"]
    for operation, attempted in operations["attempted"].items():
        acknowledged = operations["acknowledged"].get(operation, 0)
        refused = operations["refused"].get(operation, {})
        failed = operations["failed"].get(operation, {})
        lines.append(f"{operation:<20}{attempted:>10}{acknowledged:>8}  {refused} / {failed}")
    lines += ["", f"acknowledged writes: {figures['acknowledged_writes']}"]
    if figures["unrecovered"]:
        lines.append(f"NOT RECOVERED: {figures['unrecovered']}")
    if outcome.unsettled is not None:
        lines.append(f"NOT SETTLED: {outcome.unsettled}")
    lines.append(f"invariant violations: {len(outcome.violations)}")
    lines += [f"  {v.invariant}: {v.detail}" for v in outcome.violations]
    return "\n".join(lines)
