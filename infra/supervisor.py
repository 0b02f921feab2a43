"""Runs the services of `make run` in the foreground, each line of their output
prefixed with its name, and keeps them running: a service that exits (it crashed, or
someone killed it) is started again after a pause that doubles with each quick
failure, up to half a minute, and every restart is logged. The other services, the
database and Kafka go on meanwhile. Ctrl-C (SIGINT) or SIGTERM stops them all.

Each service runs in a process group of its own, so that Ctrl-C in the terminal
reaches the supervisor only, which stops them in order instead of racing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import TextIO

COLOURS = (36, 33, 32, 35, 34, 31)
"""ANSI colours of the names, in turn: cyan, yellow, green, magenta, blue, red."""
OWN_NAME = "system"
MAX_LINE_BYTES = 1 << 20
CANNOT_START = 127


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]
    environment: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    on_exit: Callable[[int], object] | None = None
    """Called with the pid of each of its processes once that has exited."""


@dataclass
class Restarts:
    """When to start a program again: `first` seconds after a quick failure, doubling up
    to `longest`; back to `first` once a run lasted `stable` seconds."""

    first: float = 1.0
    longest: float = 30.0
    stable: float = 60.0


class Supervisor:
    def __init__(
        self,
        programs: Sequence[Program],
        *,
        output: TextIO = sys.stdout,
        colour: bool | None = None,
        restarts: Restarts | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.programs = list(programs)
        self.output = output
        self.colour = output.isatty() if colour is None else colour
        self.restarts = restarts or Restarts()
        self.stop_timeout = stop_timeout
        self._width = max(len(name) for name in [OWN_NAME, *(p.name for p in programs)])
        self._colours = dict(zip([p.name for p in programs], cycle(COLOURS), strict=False))
        self._stopping = asyncio.Event()
        self._running: dict[str, asyncio.subprocess.Process] = {}

    async def run(self) -> int:
        """Run every program until `stop()`, SIGINT or SIGTERM; returns 0 then."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop)
        try:
            await asyncio.gather(*(self._keep_running(program) for program in self.programs))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        return 0

    def stop(self) -> None:
        if not self._stopping.is_set():
            self.say("stopping every process")
            self._stopping.set()

    def pid_of(self, name: str) -> int | None:
        process = self._running.get(name)
        return None if process is None else process.pid

    def say(self, line: str, *, name: str = OWN_NAME) -> None:
        prefix = f"{time.strftime('%H:%M:%S')} {name:<{self._width}} |"
        if self.colour:
            prefix = f"\033[{self._colours.get(name, 37)}m{prefix}\033[0m"
        self.output.write(f"{prefix} {line}\n")
        self.output.flush()

    async def _keep_running(self, program: Program) -> None:
        pause = self.restarts.first
        while not self._stopping.is_set():
            started = time.monotonic()
            returncode = await self._run_once(program)
            if self._stopping.is_set():
                break
            if time.monotonic() - started >= self.restarts.stable:
                pause = self.restarts.first
            self.say(f"{program.name} {_exit_reason(returncode)}; restarting in {pause:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)
            pause = min(pause * 2, self.restarts.longest)

    async def _run_once(self, program: Program) -> int:
        try:
            process = await asyncio.create_subprocess_exec(
                *program.argv,
                env=dict(program.environment),
                cwd=program.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                limit=MAX_LINE_BYTES,
            )
        except OSError as error:
            self.say(f"cannot start {program.argv[0]}: {error}", name=program.name)
            return CANNOT_START
        self._running[program.name] = process
        self.say(f"started (pid {process.pid})", name=program.name)
        stopper = asyncio.create_task(self._stop_when_asked(process))
        try:
            await self._relay_output(program.name, process)
            returncode = await process.wait()
        finally:
            stopper.cancel()
            self._running.pop(program.name, None)
        if program.on_exit is not None:
            program.on_exit(process.pid)
        return returncode

    async def _relay_output(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line longer than MAX_LINE_BYTES: pass on what came
                line = await process.stdout.read(MAX_LINE_BYTES)
            if not line:
                return
            self.say(line.decode(errors="replace").rstrip("\n"), name=name)

    async def _stop_when_asked(self, process: asyncio.subprocess.Process) -> None:
        await self._stopping.wait()
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=self.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
