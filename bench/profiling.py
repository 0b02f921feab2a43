"""Where a benchmark's CPU went: CPU seconds by part of the system while it measures
(from /proc), and py-spy recordings of the processes it names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # Its own and its children's that it has waited for (wrk's, PostgreSQL's backends').
    return sum(int(value) for value in fields[11:15])


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _machine_busy_ticks() -> int:
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return sum(fields[:8]) - idle - iowait


@contextmanager
def cpu_spent(parts: dict[str, list[int]], spent: defaultdict[str, float]) -> Iterator[None]:
    """Add to `spent` the CPU seconds each part and the rest of the machine used
    meanwhile. The load is this process and the wrk processes it has waited for (not
    the services and servers it started, which are parts of their own)."""

    def sample() -> Counter[str]:
        ticks: Counter[str] = Counter()
        for part, pids in parts.items():
            for pid in pids:
                ticks[part] += _cpu_ticks(pid)
                if part == "postgres":  # its backends, which live as long as a connection
                    ticks[part] += sum(_cpu_ticks(child) for child in _children(pid))
        ticks["rest of the machine"] = _machine_busy_ticks() - sum(ticks.values())
        return ticks

    before = sample()
    yield
    after = sample()
    for part in after:
        spent[part] += (after[part] - before[part]) / TICKS


def py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


@contextmanager
def recording(processes: dict[str, int], seconds: float, folder: Path | None) -> Iterator[None]:
    """py-spy records each of `processes` (name → pid) for `seconds`, without stopping
    it, into `folder/<name>.txt` (raw, one stack per line with its count); nothing
    without a folder. A recorder that hangs on a starved machine is ended: that
    profile is lost."""
    if folder is None:
        yield
        return
    program = py_spy()
    assert program is not None, "--profile needs py-spy: .venv/bin/pip install py-spy"
    folder.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                program,
                "record",
                "--pid",
                str(pid),
                "--duration",
                f"{seconds:.0f}",
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(folder / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in processes.items()
    ]
    try:
        yield
    finally:
        for recorder in recorders:
            try:
                recorder.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()
