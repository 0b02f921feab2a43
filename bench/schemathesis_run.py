"""Does the API do what its document says, whoever asks? schemathesis against the
gateway's merged `/openapi.json`, with identity, billing, assets, apikeys and the
gateway as real processes in a throwaway sandbox (its own PostgreSQL and Kafka), as the
end-to-end tests run them.

Everyone who may knock on a workspace's door (`ROLES`): its Super Admin, a developer, a
creator and a viewer of it (each a signed-in member), an API key of it, and a stranger
(signed in, with no place in it), each at a workspace of its own, so that what one run
changes (members removed, keys revoked) is not what the next one finds. Each is one
run: every request carries that caller's credentials, and every `{workspace_id}` in a
path is the caller's workspace (other path parameters are generated, or taken from
earlier answers). A weaker caller's 403 and 404 are answers the document
lists, not failures. The gateway's rate limits are lifted for the run
(`NO_RATE_LIMITS`).

Every check that compares an answer with the document runs (`CHECKS`: no 5xx, no
answer outside its schema, status and content type), at most `--max-examples` test
cases per operation and phase, for at most `--max-time` seconds per caller. With
`--stateful`, schemathesis also chains calls (create, then read, change and delete what
was created) along the links it infers from the document's response schemas and from
`Location` headers. It prints, per caller: the operations covered, the test cases run,
per check how many passed and failed, the answers by status, and one line per distinct
failure; then the failures of all callers together (the goal: 0).

Run: `.venv/bin/python -m bench.schemathesis_run` (every caller, 25 examples, 300 s
each); `--roles viewer,api_key` for some callers; `--stateful` to add the stateful
phase; `--max-examples 100 --max-time 900` for a longer run; `--quick` for 5 examples
and 60 s per caller; `--paths REGEX` for the operations whose path matches;
`--examples` to print a failing request of each kind as curl.
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
from datetime import UTC, datetime, timedelta
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
from shared.development_tokens import development_token, development_user_id
from shared.fields import has_a_visible_character
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
    operations: set[str] = field(default_factory=set)
    """The operations at least one test case of the run called."""
    succeeded: set[str] = field(default_factory=set)
    """The operations that answered at least one test case with a 2xx."""
    test_cases: int = 0

    def failed(self, check: str) -> int:
        return self.checks.get(check, Counter())[Status.FAILURE.value]

    @property
    def failures_found(self) -> int:
        return sum(self.failures.values())

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
        for case_id, interaction in recorder.interactions.items():
            self.test_cases += 1
            self.operations.add(recorder.cases[case_id].value.operation.label)
            if interaction.response is not None:
                self.statuses[interaction.response.status_code] += 1
                if 200 <= interaction.response.status_code < 300:
                    self.succeeded.add(recorder.cases[case_id].value.operation.label)


def _integers_written_as_integers(value: Any) -> Any:
    """JSON Schema counts `1925.0` as an integer; this API, like many JSON readers,
    takes an integer only written as one (a float for a count of credits is refused),
    and schemathesis's stateful phase writes integers as floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {name: _integers_written_as_integers(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_integers_written_as_integers(item) for item in value]
    return value


def _in_the_future(expires_at: Any) -> Any:
    """An expiry that is past when the request arrives is refused (422, as API.md
    says): the one rule of the document that depends on the clock."""
    try:
        expiry = datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        return expires_at
    if expiry.tzinfo is None or expiry > datetime.now(UTC) + timedelta(minutes=1):
        return expires_at
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


@schemathesis.hook
def before_call(_: HookContext, case: Case[Any], __: dict[str, Any]) -> None:
    """Three values that no schema can tell valid: a cursor is one the API gave out
    (`next_cursor`), an `Idempotency-Key` sent again with another body is refused (422
    `idempotency-key-reused`) by design, and a key's `expires_at` must be in the future.
    A request generated to be valid goes without a cursor, with a key of its own, with
    an expiry a day ahead when the one drawn is past, and with its integers written as
    integers."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.query:
        case.query.pop("cursor", None)
    if isinstance(case.body, dict | list):
        case.body = _integers_written_as_integers(case.body)
    if isinstance(case.body, dict) and "expires_at" in case.body:
        case.body["expires_at"] = _in_the_future(case.body["expires_at"])
    if case.headers and case.headers.get(IDEMPOTENCY_KEY):
        key = case.headers[IDEMPOTENCY_KEY]
        case.headers[IDEMPOTENCY_KEY] = f"{key[:200]}-{uuid.uuid4().hex}"


@schemathesis.hook
def filter_case(_: HookContext, case: Case[Any]) -> bool:
    """A name needs a visible character, which its document's `pattern` cannot say (see
    `has_a_visible_character`): a name drawn to be valid without one is not sent."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return True
    name = case.body.get("name") if isinstance(case.body, dict) else None
    return not isinstance(name, str) or has_a_visible_character(name)


ROLES = ("super_admin", "developer", "creator", "viewer", "api_key", "stranger")
"""Who may knock on a workspace's door: its members by role, a key of it, and someone
with no place in it."""
IN_THE_WORKSPACE = r"^/v1/workspaces/\{workspace_id\}"
"""The operations on the workspace, where one caller's answers differ from another's."""
PHASES = ("examples", "coverage", "fuzzing", "stateful")
"""schemathesis's phases: the document's examples, the coverage of each schema's edges,
generated cases, and chains of calls along the links it infers (`--stateful`)."""


@dataclass(frozen=True)
class Caller:
    token: str
    workspace_id: uuid.UUID
    role: str = "super_admin"
    user_id_in_paths: str | None = None
    """The `{user_id}` in every path of a member run: its workspace's Super Admin, whom
    the member may neither change nor remove. Generated, or taken from the member list,
    it would be the member now and then, who may leave, and be answered 404 from then
    on."""


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


def callers_each_in_a_workspace(
    gateway: str, settings: Settings, roles: tuple[str, ...] = ROLES
) -> list[Caller]:
    """A caller in each of `roles` (of `ROLES`), each at the door of a new workspace of
    its own: its Super Admin; a member invited in that role who accepted; a key of it; a
    stranger to it. What one caller's run changes (a Super Admin removes members and
    revokes keys it finds in its answers) is not what the next caller finds."""
    return [_caller_at_a_new_workspace(gateway, settings, role) for role in roles]


def _caller_at_a_new_workspace(gateway: str, settings: Settings, role: str) -> Caller:
    owner_email = f"owner.{uuid.uuid4().hex[:8]}@example.com"
    owner = sign_in(gateway, settings, email=owner_email)
    if role == "super_admin":
        return owner
    if role == "stranger":
        token = development_token(f"stranger.{uuid.uuid4().hex[:8]}@example.com", settings)
        return Caller(token, owner.workspace_id, role)
    workspace = f"/v1/workspaces/{owner.workspace_id}"
    as_owner = {"authorization": f"Bearer {owner.token}"}
    with httpx.Client(base_url=gateway, timeout=10) as client:
        if role == "api_key":
            created = client.post(f"{workspace}/api-keys", json={"name": "fuzz"}, headers=as_owner)
            created.raise_for_status()
            return Caller(created.json()["key"], owner.workspace_id, role)
        email = f"{role}.{uuid.uuid4().hex[:8]}@example.com"
        token = development_token(email, settings)
        invited = client.post(
            f"{workspace}/invitations", json={"email": email, "role": role}, headers=as_owner
        )
        invited.raise_for_status()
        client.post(
            f"/v1/invitations/{invited.json()['id']}/accept",
            headers={"authorization": f"Bearer {token}"},
        ).raise_for_status()
        owner_id = development_user_id(owner_email)
        return Caller(token, owner.workspace_id, role, user_id_in_paths=owner_id)


def fuzz(
    gateway: str,
    caller: Caller,
    *,
    max_examples: int,
    max_time: int,
    seed: int | None = None,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing"),
    paths: str | None = None,
) -> Tally:
    """schemathesis against the gateway's document, as `caller`; only the operations
    whose path matches the regular expression `paths`, if given."""
    config = SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"bearer": {"bearer": caller.token}}},
            "parameters": {
                "path.workspace_id": str(caller.workspace_id),
                **({"path.user_id": caller.user_id_in_paths} if caller.user_id_in_paths else {}),
            },
            "generation": {"max-examples": max_examples, "database": "none"},
            "cache": {"enabled": False},
            "max-time": max_time,
            "workers": 1,
            "request-timeout": 30,
            "phases": {phase: {"enabled": phase in phases} for phase in PHASES},
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
    document = schemathesis.openapi.from_url(f"{gateway}/openapi.json", config=config)
    schema = document if paths is None else document.include(path_regex=paths)
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
    lines = [
        f"operations covered: {len(tally.operations)}; test cases run: {tally.test_cases}; "
        f"failures: {tally.failures_found}",
        f"{'check':<32}{'passed':>8}{'failed':>8}",
    ]
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
    parser.add_argument("--roles", default=",".join(ROLES), help=f"of {', '.join(ROLES)}")
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--max-time", type=int, default=300, help="seconds per caller")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--phases", default="examples,coverage,fuzzing", help=f"of {', '.join(PHASES)}"
    )
    parser.add_argument("--stateful", action="store_true", help="add the stateful phase")
    parser.add_argument("--quick", action="store_true", help="5 examples, 60 seconds per caller")
    parser.add_argument("--examples", action="store_true", help="a failing request of each kind")
    parser.add_argument("--paths", default=None, help="only the operations whose path matches")
    args = parser.parse_args()
    if args.quick:
        args.max_examples, args.max_time = 5, 60
    phases = tuple(args.phases.split(",")) + (("stateful",) if args.stateful else ())
    logs = Path(tempfile.mkdtemp(prefix="atrium-schemathesis-logs-"))
    failures = 0
    with (
        sandbox("atrium-schemathesis") as atrium,
        gateway_of_a_running_system(atrium.environment, logs) as url,
    ):
        callers = callers_each_in_a_workspace(url, atrium.settings, tuple(args.roles.split(",")))
        for caller in callers:
            tally = fuzz(
                url,
                caller,
                max_examples=args.max_examples,
                max_time=args.max_time,
                seed=args.seed,
                phases=phases,
                paths=args.paths,
            )
            failures += tally.failures_found
            print(f"\n== {caller.role} ==\n{report(tally, examples=args.examples)}", flush=True)
    print(f"\nfailures of all {len(callers)} callers: {failures}")


if __name__ == "__main__":
    main()
