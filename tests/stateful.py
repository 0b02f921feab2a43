"""Hypothesis state machines whose rules drive the async services of a test.

hypothesis runs a `RuleBasedStateMachine`'s rules as plain functions, one after the
other; the services under test, their clients and their database engines live on the
test session's event loop (the fixtures made them there). So the machine runs in a
worker thread while the test's coroutine waits for it, and each rule hands its
coroutine over to the session's loop and waits for the answer: the fixtures are used
as they are, on the loop they were made on, and every step is still one step at a
time.

The number of runs is bounded for `make test`; `ATRIUM_MODEL_EXAMPLES` (and
`ATRIUM_MODEL_STEPS`) ask for more, and then the test has no time limit, for example:

    ATRIUM_MODEL_EXAMPLES=200 ATRIUM_MODEL_STEPS=60 .venv/bin/pytest -p no:cacheprovider \
        tests/integration/billing/test_ledger_model.py -q
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

T = TypeVar("T")

LONGER_RUN = "ATRIUM_MODEL_EXAMPLES" in os.environ

within_time = pytest.mark.timeout(0 if LONGER_RUN else 480)
"""A bounded run's time limit leaves hypothesis room to shrink a failure (it stops
shrinking after 300 s); a longer run asked for has none."""


class LoopDrivenMachine(RuleBasedStateMachine):
    """A state machine whose rules await coroutines on the test's event loop."""

    loop: ClassVar[asyncio.AbstractEventLoop]

    def wait_for(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the test's loop and return what it returns (or raise what
        it raises), from the machine's thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


def model_settings(*, examples: int, steps: int) -> settings:
    """Bounded runs for `make test`; the environment may ask for longer ones."""
    return settings(
        max_examples=int(os.environ.get("ATRIUM_MODEL_EXAMPLES", examples)),
        stateful_step_count=int(os.environ.get("ATRIUM_MODEL_STEPS", steps)),
        deadline=None,
        # Explaining a failure re-runs it under coverage: too slow for runs this long.
        phases=[phase for phase in Phase if phase is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


async def run_machine(
    machine: type[LoopDrivenMachine], run_settings: settings, **attributes: Any
) -> None:
    """Run `machine` to the end (hypothesis shrinks and raises what failed), its
    instances given `attributes` (the fixtures its rules use) and this loop."""
    bound = type(
        machine.__name__,
        (machine,),
        {"loop": asyncio.get_running_loop(), **attributes},
    )
    await asyncio.to_thread(run_state_machine_as_test, bound, settings=run_settings)
