"""HTTP load with wrk (`/usr/bin/wrk`, from Debian): one run at a number of connections
for a number of seconds, and what it measured, read from wrk's report.

A run that sends something other than the same GET each time (a POST whose
`Idempotency-Key` differs per request, say) passes wrk a Lua script (`-s`); the
script's `request()` builds each request.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

WRK = shutil.which("wrk")


@dataclass(frozen=True)
class Measured:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Answers other than 2xx."""
    unanswered: int = 0
    """wrk's socket errors: a request unanswered after 10 s is one."""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def run_wrk(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    *,
    script: Path | None = None,
) -> Measured:
    """`connections` kept busy for `seconds` from one wrk thread (the services share
    the machine's CPUs with it)."""
    assert WRK is not None, "wrk is missing: apt-get install wrk"
    header_options = [
        option for name, value in headers.items() for option in ("-H", f"{name}: {value}")
    ]
    script_options = [] if script is None else ["-s", str(script)]
    process = await asyncio.create_subprocess_exec(
        WRK,
        "-t1",
        "--timeout",
        "10s",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--latency",
        *header_options,
        *script_options,
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    output = (await process.communicate())[0].decode()
    return parse_wrk(output, seconds)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str, seconds: float) -> Measured:
    def latency(percent: int) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        assert found is not None, output
        return float(found.group(1)) * _UNITS[found.group(2)]

    requests = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    assert requests is not None, output
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    unanswered = sum(int(count) for count in socket_errors.groups()) if socket_errors else 0
    return Measured(int(requests.group(1)), seconds, latency(50), latency(99), errors, unanswered)
