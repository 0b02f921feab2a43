"""Where a benchmark keeps what it measured: `bench/results/<benchmark>.json`, one file
per benchmark, overwritten by each run, with the machine and the commit it ran on, so
that the README's summary can say where each figure comes from.

Every figure is saved next to the baseline measured in the same run (a ratio is only
meaningful against the baseline of its own run).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(benchmark: str, figures: dict[str, Any], *, quick: bool = False) -> Path:
    """Write `figures` (JSON-able: numbers, strings, lists and dicts of them) for
    `benchmark`; a `--quick` run goes beside the real one, never over it."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{benchmark}{'.quick' if quick else ''}.json"
    record = {
        "benchmark": benchmark,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "quick": quick,
        "figures": figures,
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    print(f"results saved in {path}")
    return path


def _commit() -> str | None:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=RESULTS.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return found.stdout.strip()
