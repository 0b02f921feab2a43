"""The fault campaign, long: the whole system in a sandbox of its own (its own
PostgreSQL and Kafka, each service its own processes), a seeded workload through the
gateway from several accounts while processes are killed and started again, then the
guarantees checked. Prints the figures and saves them (`bench/results/campaign.json`);
exits 1 when a guarantee was broken, a process did not come back or the accounts did
not settle.

Run: `.venv/bin/python -m bench.campaign --seconds 900 --seed 1`. `--injections`: how
many kills (default one per 8 s of the run: the rate); `--at-once`: how many may be
under way together (default 2; an injection lasts until the gateway serves again);
`--calm-seconds`: how long the workload goes on after the last recovery (default 0);
`--accounts`, `--workers`. The run lasts at least `--seconds`, longer when the
injections take longer: every one is made (Kafka alone takes ~20 s to start again on a
loaded 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from bench.campaign.run import CAMPAIGN_SETTINGS, Plan, campaign, report
from bench.results import save
from bench.system import NO_RATE_LIMITS, running_system
from infra.sandbox import sandbox
from shared.settings import ServiceName

SECONDS_PER_INJECTION = 8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--injections", type=int, default=None)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--at-once", type=int, default=2)
    parser.add_argument("--calm-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    plan = Plan(
        seed=args.seed,
        seconds=args.seconds,
        injections=args.injections or max(1, int(args.seconds // SECONDS_PER_INJECTION)),
        accounts=args.accounts,
        workers=args.workers,
        at_once=args.at_once,
        calm_seconds=args.calm_seconds,
    )
    with (
        sandbox("atrium-campaign") as env,
        tempfile.TemporaryDirectory(prefix="atrium-campaign-logs-") as logs,
        running_system(
            env.environment, Path(logs), overrides={**NO_RATE_LIMITS, **CAMPAIGN_SETTINGS}
        ) as running,
    ):
        outcome = asyncio.run(
            campaign(
                plan,
                gateway_url=running[ServiceName.GATEWAY].url,
                services=running,
                postgres=env.postgres,
                kafka=env.kafka,
                settings=env.settings,
            )
        )
    print(report(outcome))
    save("campaign", outcome.figures())
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
