"""Does the API do what its document says? schemathesis against the gateway's merged
`/openapi.json`, with identity, billing and the gateway as real processes in a
throwaway sandbox (its own PostgreSQL and Kafka), as the end-to-end tests run them.

A signed-in user with one workspace of their own makes the workspace-scoped
operations reachable: every request carries the user's token, and every
`{workspace_id}` in a path is that workspace (other path parameters are generated).
The gateway's rate limits are lifted for the run (`NO_RATE_LIMITS`).

Every check that compares an answer with the document runs, at most
`--max-examples` test cases per operation and phase, for at most `--max-time`
seconds in all. It prints, per check, how many test cases passed and failed,
the answers by status, and one line per distinct failure.

Run: `.venv/bin/python -m bench.schemathesis_run`; `--quick` for a short run.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as engine_events
from schemathesis.generation.case import Case
from schemathesis.hooks import HookContext

from bench.system import NO_RATE_LIMITS, running_system
from infra.sandbox import sandbox
from services.gateway.auth import development_token
from shared.settings import ServiceName, Settings

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
)
"""Checks of one answer against the document and HTTP. schemathesis's checks that
need sequences of calls (`use_after_free`, `ensure_resource_availability`) and a second
identity (`object_level_authorization`) are left out."""
DOCUMENTATION_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
REFUSED_BY_A_RULE = ("402", "410")
"""Answers to a well-formed request that no schema can foresee: credits that run short
(402) and an invitation that expired (410), next to schemathesis's own list (401, 403,
404, 409, 429, 5xx) for `positive_data_acceptance`."""
IDEMPOTENCY_KEY = "Idempotency-Key"


@dataclass
class Tally:
    """What one run found."""

    checks: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    """(check, operation, title, status answered) -> test cases."""
    examples: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    """One failing request of each kind, as curl, with what the check said."""
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def failed(self, check: str) -> int:
        return self.checks.get(check, Counter())[Status.FAILURE.value]

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def record(self, recorder: Any) -> None:
        for case_id, nodes in recorder.checks.items():
            for node in nodes:
                self.checks.setdefault(node.name, Counter())[node.status.value] += 1
                if node.status == Status.FAILURE and node.failure_info is not None:
                    failure = node.failure_info.failure
                    interaction = recorder.interactions.get(case_id)
                    response = interaction.response if interaction else None
                    status = response.status_code if response else 0
                    label = recorder.cases[case_id].value.operation.label
                    key = (node.name, label, failure.title, status)
                    self.failures[key] += 1
                    answer = response.content[:300].decode(errors="replace") if response else ""
                    self.examples.setdefault(
                        key, f"{node.failure_info.code_sample}\n    {failure.message}\n    {answer}"
                    )
        for interaction in recorder.interactions.values():
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1


@schemathesis.hook
def before_call(_: HookContext, case: Case[Any], __: dict[str, Any]) -> None:
    """Two parameters whose valid values no schema can tell: a cursor is one the API
    gave out (`next_cursor`), and an `Idempotency-Key` sent again with another body
    is refused (422 `idempotency-key-reused`) by design. A request generated to be
    valid goes without a cursor, and with a key of its own."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.query:
        case.query.pop("cursor", None)
    if case.headers and case.headers.get(IDEMPOTENCY_KEY):
        key = case.headers[IDEMPOTENCY_KEY]
        case.headers[IDEMPOTENCY_KEY] = f"{key[:200]}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Caller:
    token: str
    workspace_id: uuid.UUID


def sign_in(gateway: str, settings: Settings, email: str = "fuzz@example.com") -> Caller:
    """A user's token and a workspace of theirs that the gateway already lets them
    into."""
    token = development_token(email, settings)
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway, headers=headers, timeout=10) as client:
        created = client.post("/v1/workspaces", json={"name": "Fuzzing"})
        created.raise_for_status()
        workspace_id = uuid.UUID(created.json()["id"])
        deadline = time.monotonic() + 15
        while client.get(f"/v1/workspaces/{workspace_id}/balances").status_code != 200:
            if time.monotonic() > deadline:
                msg = "billing did not learn of the new workspace"
                raise TimeoutError(msg)
            time.sleep(0.1)
    return Caller(token=token, workspace_id=workspace_id)


def fuzz(
    gateway: str,
    caller: Caller,
    *,
    max_examples: int,
    max_time: int,
    seed: int | None = None,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing"),
) -> Tally:
    """schemathesis against the gateway's document, as `caller`."""
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"bearer": {"bearer": caller.token}}},
            "parameters": {"path.workspace_id": str(caller.workspace_id)},
            "generation": {"max-examples": max_examples, "database": "none"},
            "cache": {"enabled": False},
            "max-time": max_time,
            "workers": 1,
            "request-timeout": 30,
            "phases": {
                phase: {"enabled": phase in phases}
                for phase in ("examples", "coverage", "fuzzing", "stateful")
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "positive_data_acceptance": {
                    "enabled": True,
                    "expected-statuses": [
                        "2xx",
                        "3xx",
                        "401",
                        "403",
                        "404",
                        "409",
                        "429",
                        "5xx",
                        *REFUSED_BY_A_RULE,
                    ],
                },
            },
            **({"seed": seed} if seed is not None else {}),
        }
    )
    schema = schemathesis.openapi.from_url(f"{gateway}/openapi.json", config=config)
    tally = Tally()
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            tally.record(event.recorder)
        elif isinstance(event, engine_events.NonFatalError):
            tally.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, engine_events.FatalError):
            tally.errors.append(f"fatal: {event.exception!r}")
    tally.seconds = time.monotonic() - started
    return tally


def report(tally: Tally, *, examples: bool = False) -> str:
    lines = [f"{'check':<32}{'passed':>8}{'failed':>8}"]
    for name in CHECKS:
        counts = tally.checks.get(name, Counter())
        passed, failed = counts[Status.SUCCESS.value], counts[Status.FAILURE.value]
        mark = "  (documentation)" if name in DOCUMENTATION_CHECKS else ""
        lines.append(f"{name:<32}{passed:>8}{failed:>8}{mark}")
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
    lines.append(f"\nanswers by status: {answers}")
    lines.append(f"server errors (5xx): {tally.server_errors}; run took {tally.seconds:.0f}s")
    if tally.failures:
        lines.append("\nfailures (check, operation, what, status answered: test cases):")
        for key, count in sorted(tally.failures.items()):
            check, operation, title, status = key
            lines.append(f"  {check:<30} {operation:<55} {title}, {status}: {count}")
            if examples:
                lines.append(f"    {tally.examples[key]}")
    lines.extend(f"error: {error}" for error in tally.errors)
    return "\n".join(lines)


@contextlib.contextmanager
def gateway_of_a_running_system(environment: dict[str, str], logs: Path) -> Iterator[str]:
    """The whole system as processes, its rate limits lifted; yields the gateway's URL."""
    try:
        with running_system(environment, logs, overrides=NO_RATE_LIMITS) as running:
            yield running[ServiceName.GATEWAY].url
    finally:
        print(f"service logs: {logs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--max-time", type=int, default=300, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--phases", default="examples,coverage,fuzzing", help="of examples, coverage, fuzzing"
    )
    parser.add_argument("--quick", action="store_true", help="5 examples, 60 seconds")
    parser.add_argument("--examples", action="store_true", help="a failing request of each kind")
    args = parser.parse_args()
    if args.quick:
        args.max_examples, args.max_time = 5, 60
    logs = Path(tempfile.mkdtemp(prefix="atrium-schemathesis-logs-"))
    with (
        sandbox("atrium-schemathesis") as atrium,
        gateway_of_a_running_system(atrium.environment, logs) as url,
    ):
        caller = sign_in(url, atrium.settings)
        tally = fuzz(
            url,
            caller,
            max_examples=args.max_examples,
            max_time=args.max_time,
            seed=args.seed,
            phases=tuple(args.phases.split(",")),
        )
    print(report(tally, examples=args.examples))


if __name__ == "__main__":
    main()
