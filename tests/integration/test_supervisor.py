"""`make run` keeps the system up: a service that dies is started again, and the others
go on meanwhile; Ctrl-C stops them all."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from infra.processes import pid_alive
from infra.supervisor import Program, Restarts, Supervisor
from shared.metrics import MULTIPROCESS_DIRECTORY, exposition, forget_process
from shared.testing import REPO, eventually
from tests.scrapes import value

pytestmark = pytest.mark.integration

SLEEPER = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(600)"


def sleeper(name: str) -> Program:
    return Program(name, [sys.executable, "-c", SLEEPER])


def pids_of(name: str, output: io.StringIO) -> list[int]:
    """The pids the program printed, in the order it was started."""
    return [
        int(line.rsplit(" ", 1)[1])
        for line in output.getvalue().splitlines()
        if f" {name} " in line and "| pid " in line
    ]


async def test_a_killed_service_is_started_again_while_the_others_keep_running() -> None:
    output = io.StringIO()
    supervisor = Supervisor(
        [sleeper("billing"), sleeper("identity")],
        output=output,
        restarts=Restarts(first=0.2),
    )
    running = asyncio.create_task(supervisor.run())
    try:
        [billing] = await eventually(lambda: _some(pids_of("billing", output)), what="billing")
        [identity] = await eventually(lambda: _some(pids_of("identity", output)), what="identity")

        os.kill(billing, signal.SIGKILL)

        restarted = await eventually(
            lambda: _some(pids_of("billing", output)[1:]), what="billing to start again"
        )
        assert restarted[0] != billing
        assert pid_alive(restarted[0])
        assert pid_alive(identity)
        assert pids_of("identity", output) == [identity], "identity was never restarted"
        assert "billing was killed by SIGKILL; restarting in 0.2s" in output.getvalue()
    finally:
        supervisor.stop()
        assert await asyncio.wait_for(running, timeout=20) == 0

    assert not pid_alive(identity)
    assert not pid_alive(restarted[0])


async def test_a_killed_process_s_gauges_stop_counting_and_its_counters_go_on(
    tmp_path: Path,
) -> None:
    """As `atrium-infra run` runs a service: its processes share a metrics directory,
    and the supervisor forgets the gauges of each one that exits."""
    reporting = (
        "import os, time; from shared import metrics; "
        "metrics.OUTBOX_BACKLOG.labels('billing').set(os.getpid()); "
        "metrics.EVENTS_PUBLISHED.labels('billing', 'atrium.billing.limits').inc(); " + SLEEPER
    )
    output = io.StringIO()
    program = Program(
        "billing",
        [sys.executable, "-c", reporting],
        environment={**os.environ, MULTIPROCESS_DIRECTORY: str(tmp_path)},
        cwd=REPO,
        on_exit=functools.partial(forget_process, tmp_path),
    )
    supervisor = Supervisor([program], output=output, restarts=Restarts(first=0.2))
    running = asyncio.create_task(supervisor.run())
    try:
        [first] = await eventually(lambda: _some(pids_of("billing", output)), what="billing")
        os.kill(first, signal.SIGKILL)
        [second] = await eventually(
            lambda: _some(pids_of("billing", output)[1:]), what="billing to start again"
        )
        scraped = exposition(str(tmp_path))
    finally:
        supervisor.stop()
        assert await asyncio.wait_for(running, timeout=20) == 0

    assert value(scraped, "atrium_outbox_backlog", service="billing") == second
    published = {"service": "billing", "topic": "atrium.billing.limits"}
    assert value(scraped, "atrium_events_published_total", **published) == 2


async def _some(values: list[int]) -> list[int] | None:
    return values or None


def test_ctrl_c_stops_every_service(tmp_path: Path) -> None:
    """The supervisor in its own process, as `make run` runs it, and SIGINT as a
    terminal's Ctrl-C sends it."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from infra.supervisor import Program, Supervisor
        sleeper = {SLEEPER!r}
        programs = [Program(n, [sys.executable, "-c", sleeper]) for n in ("a", "b")]
        sys.exit(asyncio.run(Supervisor(programs).run()))
        """
    )
    log = tmp_path / "supervisor.log"
    with log.open("w") as output:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        deadline = time.monotonic() + 20
        while len(started := _printed_pids(log)) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

        supervisor.send_signal(signal.SIGINT)

        assert supervisor.wait(timeout=20) == 0
    finally:
        supervisor.kill()
    assert not any(pid_alive(pid) for pid in started), log.read_text()
    assert "stopping every process" in log.read_text()


def _printed_pids(log: Path) -> list[int]:
    return [
        int(line.rsplit(" ", 1)[1]) for line in log.read_text().splitlines() if "| pid " in line
    ]
