"""Black-box security probes against a running Atrium (what `make run` starts).

Each probe sends a bounded amount of traffic to loopback only and prints one line:
name | what was done | expected | observed | PASS/FAIL. The script exits 1 if any probe
fails.

    C1  a person already in a pool cannot take more seats by accepting invitations
        to parent-billed sub-workspaces with other `sub`s and the same verified email
    H3  a sub-workspace capped at 2 seats admits exactly 2 of 12 racing invitations
    H1  the published development secrets sign nothing the system believes
    H2  Kafka refuses a forged `member.joined` from a client without (valid) credentials
    H4  a flood of half-open connections from one address does not starve another
    M2  malformed inputs are 4xx, never 5xx

The secrets come from `$ATRIUM_HOME/secrets.env` (default `.atrium/secrets.env` in the
checkout; `ATRIUM_JWT_SECRET` / `ATRIUM_INTERNAL_SECRET` in the environment win).

Run: `.venv/bin/python -m bench.security_probes [--connections 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from aiokafka import AIOKafkaProducer

from bench.edge_flood import hold
from contracts.envelope import new_envelope
from contracts.events.identity import MemberJoined
from contracts.permissions import Role
from infra.secrets_file import read_secrets
from shared.development_tokens import development_user_id
from shared.principal import PRINCIPAL_HEADER, Principal, request_target, sign_principal

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JWT_SECRET = "atrium-development-jwt-secret-change-me"
DEFAULT_INTERNAL_SECRET = "atrium-development-internal-secret-change-me"
OTHER_ADDRESS = "127.0.0.2"
PROBE_TIMEOUT = 180.0


@dataclass
class Results:
    failed: int = 0
    lines: list[str] = field(default_factory=list)

    def report(self, name: str, done: str, expected: str, observed: str, ok: bool) -> None:
        self.failed += not ok
        line = f"{name:<6} | {done} | expected: {expected} | observed: {observed} | " + (
            "PASS" if ok else "FAIL"
        )
        self.lines.append(line)
        print(line, flush=True)


@dataclass
class Target:
    gateway: str
    identity: str
    billing: str
    kafka: str
    jwt_secret: str
    internal_secret: str
    gateway_kafka_password: str | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def email(self, who: str) -> str:
        return f"{who}-{self.run}@probe.example"

    def token(self, email: str, *, sub: str | None = None, **extra: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub or development_user_id(email),
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **extra,
        }
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Api:
    def __init__(self, client: httpx.AsyncClient, target: Target) -> None:
        self.client = client
        self.target = target

    async def call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {**bearer(token), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, token: str, **kwargs: Any) -> Any:
        answer = await self.call(method, path, token, **kwargs)
        if answer.status_code >= 300:
            msg = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            raise RuntimeError(msg)
        return answer.json() if answer.content else None

    async def root(self, token: str, name: str) -> str:
        created = await self.ok("POST", "/v1/workspaces", token, json={"name": name})
        return str(created["id"])

    async def sub(self, token: str, parent: str, name: str) -> str:
        body = {"name": name, "billing_mode": "parent", "api_access": False}
        created = await self.ok("POST", f"/v1/workspaces/{parent}/sub-workspaces", token, json=body)
        return str(created["id"])

    async def invite(self, token: str, workspace: str, email: str) -> httpx.Response:
        body = {"email": email, "role": "viewer"}
        return await self.call("POST", f"/v1/workspaces/{workspace}/invitations", token, json=body)

    async def accept(self, token: str, invitation: str) -> httpx.Response:
        return await self.call("POST", f"/v1/invitations/{invitation}/accept", token)


async def c1(api: Api, target: Target, out: Results, state: dict[str, Any]) -> None:
    founder_email = target.email("c1-founder")
    founder = target.token(founder_email)
    root = await api.root(founder, "C1 probe")
    state["victim_root"], state["victim_founder"] = root, founder
    people = [target.email(f"c1-person{n}") for n in range(1, 5)]
    for email in people:
        invitation = await api.invite(founder, root, email)
        if invitation.status_code != 201:
            raise RuntimeError(f"inviting {email}: {invitation.status_code} {invitation.text}")
        accepted = await api.accept(target.token(email), invitation.json()["id"])
        if accepted.status_code != 200:
            raise RuntimeError(f"accepting as {email}: {accepted.status_code} {accepted.text}")
    x = people[0]
    statuses: list[str] = []
    for n in range(3):
        sub = await api.sub(founder, root, f"C1 sub {n}")
        invitation = await api.invite(founder, sub, x)
        if invitation.status_code != 201:
            statuses.append(f"invite {invitation.status_code}")
            continue
        other_sub = f"probe-{uuid.uuid4()}"
        accepted = await api.accept(target.token(x, sub=other_sub), invitation.json()["id"])
        statuses.append(str(accepted.status_code))
    seats = await api.ok("GET", f"/v1/workspaces/{root}/seats", founder)
    ok = statuses == ["409"] * 3 and seats["used"] <= 5 and seats["limit"] == 5
    out.report(
        "C1",
        "root with 5 seats filled (founder+4); member X invited to 3 parent-billed subs, "
        "each accepted by another sub with X's verified email",
        "accepts 409 x3; root seats used <= 5",
        f"accepts {statuses}; seats used {seats['used']} limit {seats['limit']} "
        f"pending {seats['pending']}",
        ok,
    )


async def h3(api: Api, target: Target, out: Results) -> None:
    founder = target.token(target.email("h3-founder"))
    root = await api.root(founder, "H3 probe")
    sub = await api.sub(founder, root, "H3 capped")
    capped = await api.call("PUT", f"/v1/workspaces/{sub}/seats", founder, json={"cap": 2})
    if capped.status_code != 200:
        raise RuntimeError(f"PUT seats cap 2: {capped.status_code} {capped.text[:200]}")
    answers = await asyncio.gather(
        *(api.invite(founder, sub, target.email(f"h3-racer{n}")) for n in range(12))
    )
    codes = sorted(answer.status_code for answer in answers)
    created = codes.count(201)
    seats = await api.ok("GET", f"/v1/workspaces/{sub}/seats", founder)
    out.report(
        "H3",
        "sub-workspace capped at 2 seats (PUT .../seats by root Super Admin); 12 invitations raced",
        "exactly 2 x 201",
        f"{created} x 201; statuses {codes}; sub seats {seats}",
        created == 2,
    )


async def h1(api: Api, target: Target, out: Results, state: dict[str, Any]) -> None:
    forged = jwt.encode(
        {
            "sub": str(uuid.uuid4()),
            "email": target.email("h1"),
            "email_verified": True,
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        },
        DEFAULT_JWT_SECRET,
        algorithm="HS256",
    )
    gateway = await api.call("GET", "/v1/workspaces", forged)
    out.report(
        "H1.jwt",
        "GET /v1/workspaces at the gateway with a token signed by the published JWT default",
        "401",
        str(gateway.status_code),
        gateway.status_code == 401,
    )
    root = uuid.UUID(state.get("victim_root") or str(uuid.uuid4()))
    principal = Principal(
        user_id=str(uuid.uuid4()),
        email=target.email("h1"),
        email_verified=True,
        workspace_id=None,
    )
    body = b'{"name":"forged"}'
    header = sign_principal(
        principal,
        method="POST",
        target="/v1/workspaces",
        body=body,
        secret=DEFAULT_INTERNAL_SECRET,
    )
    identity = await api.client.post(
        f"{target.identity}/v1/workspaces",
        content=body,
        headers={PRINCIPAL_HEADER: header, "content-type": "application/json"},
    )
    out.report(
        "H1.idn",
        "POST /v1/workspaces on identity :8101 with a principal signed by the published "
        "internal default",
        "401",
        str(identity.status_code),
        identity.status_code == 401,
    )
    path = f"/v1/workspaces/{root}/balances"
    admin = Principal(
        user_id=str(uuid.uuid4()),
        email=target.email("h1"),
        email_verified=True,
        workspace_id=root,
        role=Role.SUPER_ADMIN,
    )
    header = sign_principal(
        admin,
        method="GET",
        target=request_target(path.encode(), b""),
        body=b"",
        secret=DEFAULT_INTERNAL_SECRET,
    )
    billing = await api.client.get(f"{target.billing}{path}", headers={PRINCIPAL_HEADER: header})
    out.report(
        "H1.bil",
        "GET balances on billing :8102 as super_admin, principal signed by the published "
        "internal default",
        "401",
        str(billing.status_code),
        billing.status_code == 401,
    )


async def produce(target: Target, value: bytes, key: bytes, **auth: Any) -> str:
    """What the broker did with one forged event: 'accepted' or the error it raised."""
    producer = AIOKafkaProducer(
        bootstrap_servers=target.kafka,
        request_timeout_ms=5000,
        metadata_max_age_ms=5000,
        **auth,
    )
    try:
        await asyncio.wait_for(producer.start(), timeout=15)
        await asyncio.wait_for(
            producer.send_and_wait("atrium.identity.membership", value=value, key=key),
            timeout=15,
        )
    except Exception as error:  # noqa: BLE001 - any refusal is the observation
        return f"refused ({type(error).__name__}: {str(error)[:120]})"
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=10)
    return "accepted"


async def h2(api: Api, target: Target, out: Results, state: dict[str, Any]) -> None:
    victim = state.get("victim_root")
    if victim is None:
        victim = await api.root(target.token(target.email("h2-victim")), "H2 victim")
    root = uuid.UUID(victim)
    attacker_email = target.email("h2-attacker")
    attacker_sub = development_user_id(attacker_email)
    event = MemberJoined(
        workspace_id=root,
        root_id=root,
        billing_root_id=root,
        user_id=attacker_sub,
        email=attacker_email,
        role=Role.SUPER_ADMIN,
    )
    envelope = new_envelope(
        event,
        producer="identity",
        root_id=root,
        workspace_id=root,
        actor="system",
        correlation_id=None,
    )
    value = envelope.model_dump_json().encode()
    key = str(root).encode()
    if target.gateway_kafka_password:
        control = AIOKafkaProducer(
            bootstrap_servers=target.kafka,
            request_timeout_ms=5000,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username="atrium_gateway",
            sasl_plain_password=target.gateway_kafka_password,
        )
        try:
            await asyncio.wait_for(control.start(), timeout=15)
            reached = "connected (metadata fetched, nothing produced)"
        except Exception as error:  # noqa: BLE001
            reached = f"{type(error).__name__}: {str(error)[:120]}"
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(control.stop(), timeout=10)
        out.report(
            "H2.ctl",
            "control: the broker is up and takes the gateway's own SCRAM credentials",
            "connects",
            reached,
            reached.startswith("connected"),
        )
    anonymous = await produce(target, value, key)
    out.report(
        "H2.anon",
        "forged member.joined (attacker super_admin of another root) produced to "
        "atrium.identity.membership without credentials",
        "refused by the broker",
        anonymous,
        anonymous != "accepted",
    )
    wrong = await produce(
        target,
        value,
        key,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="atrium_identity",
        sasl_plain_password="wrong-" + uuid.uuid4().hex,
    )
    out.report(
        "H2.pass",
        "the same event as atrium_identity with a wrong SCRAM-SHA-512 password",
        "refused by the broker",
        wrong,
        wrong != "accepted",
    )
    await asyncio.sleep(2)  # what a delivered event would have needed to arrive
    balances = await api.call(
        "GET", f"/v1/workspaces/{root}/balances", target.token(attacker_email)
    )
    out.report(
        "H2.read",
        "attacker's own token reads the victim root's balances afterwards",
        "404",
        str(balances.status_code),
        balances.status_code == 404,
    )


async def m2(api: Api, target: Target, out: Results, state: dict[str, Any]) -> None:
    token = state.get("victim_founder") or target.token(target.email("m2"))
    root = state.get("victim_root") or await api.root(token, "M2 probe")
    json_headers = {"content-type": "application/json"}
    ledger = f"/v1/workspaces/{root}/ledger"
    members = f"/v1/workspaces/{root}/members"
    cases: list[tuple[str, str, Callable[[], Awaitable[httpx.Response]]]] = [
        (
            "M2.surr",
            'POST /v1/workspaces {"name":"\\ud800"} (raw JSON escape)',
            lambda: api.call(
                "POST", "/v1/workspaces", token, content=b'{"name":"\\ud800"}', headers=json_headers
            ),
        ),
        (
            "M2.nul",
            'POST spend {"reference":"a\\u0000b"} (raw JSON escape)',
            lambda: api.call(
                "POST",
                f"/v1/workspaces/{root}/spend",
                token,
                content=b'{"operation":"image_creation","quantity":1,"reference":"a\\u0000b"}',
                headers={**json_headers, "idempotency-key": str(uuid.uuid4())},
            ),
        ),
        (
            "M2.lim",
            "GET /v1/workspaces?limit=%C2%B2",
            lambda: api.call("GET", "/v1/workspaces?limit=%C2%B2", token),
        ),
    ]
    for label, cursor in (
        ("M2.mc1", "WyJhYmMiXQ=="),
        ("M2.mc2", "W3t9XQ=="),
        ("M2.mc3", "WzFlNDAwXQ=="),
    ):
        cases.append(
            (
                label,
                f"GET members?cursor={cursor} ({base64.b64decode(cursor).decode()})",
                lambda cursor=cursor: api.call("GET", members, token, params={"cursor": cursor}),  # type: ignore[misc]
            )
        )
    for label, raw in (("M2.lc1", f"[{2**70}]"), ("M2.lc2", "[true]")):
        cursor = b64(raw)
        cases.append(
            (
                label,
                f"GET ledger?cursor={cursor} ({raw})",
                lambda cursor=cursor: api.call("GET", ledger, token, params={"cursor": cursor}),  # type: ignore[misc]
            )
        )
    huge_exp = target.token(target.email("m2-exp"), exp=int("9" * 400))
    cases.append(
        (
            "M2.exp",
            "GET /v1/workspaces with a validly signed JWT whose exp is a 400-digit integer",
            lambda: api.call("GET", "/v1/workspaces", huge_exp),
        )
    )
    for label, done, send in cases:
        try:
            answer = await send()
            observed = f"{answer.status_code} {answer.text[:80]!r}"
            ok = 400 <= answer.status_code < 500
        except httpx.HTTPError as error:
            observed, ok = f"{type(error).__name__}: {error}", False
        out.report(label, done, "4xx", observed, ok)


def h4(target: Target, out: Results, connections: int, workers: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = httpx.URL(target.gateway).port or 80
    token = target.token(target.email("h4"))
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    started = time.perf_counter()
    for _ in range(workers):
        ours, theirs = context.Pipe()
        worker = context.Process(target=hold, args=(port, connections // workers, theirs))
        worker.start()
        pipes.append(ours)
        processes.append(worker)
    try:
        opened = 0
        for pipe in pipes:
            if not pipe.poll(300):
                raise TimeoutError("a flood worker did not report within 300 s")
            opened += pipe.recv()[1]
        flood_seconds = time.perf_counter() - started

        async def other() -> tuple[str, float]:
            transport = httpx.AsyncHTTPTransport(local_address=OTHER_ADDRESS)
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                began = time.perf_counter()
                try:
                    answer = await client.get(
                        f"{target.gateway}/v1/workspaces", headers=bearer(token)
                    )
                    status = str(answer.status_code)
                except httpx.HTTPError as error:
                    status = f"{type(error).__name__}"
                return status, time.perf_counter() - began

        status, latency = asyncio.run(other())
        for pipe in pipes:
            pipe.send("count")
        held = sum(pipe.recv()[1] for pipe in pipes if pipe.poll(60))
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("let go")
        for worker in processes:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    out.report(
        "H4",
        f"{opened} half-open connections from 127.0.0.1 ({workers} processes, opened in "
        f"{flood_seconds:.1f}s, gateway held {held}); authenticated GET /v1/workspaces "
        f"from {OTHER_ADDRESS}",
        "200 within 5 s",
        f"{status} in {latency * 1000:.0f} ms",
        status == "200" and latency <= 5,
    )


async def http_probes(target: Target, out: Results) -> None:
    state: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=target.gateway, timeout=10) as client:
        api = Api(client, target)
        probes: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("C1", lambda: c1(api, target, out, state)),
            ("H3", lambda: h3(api, target, out)),
            ("H1", lambda: h1(api, target, out, state)),
            ("H2", lambda: h2(api, target, out, state)),
            ("M2", lambda: m2(api, target, out, state)),
        ]
        for name, probe in probes:
            try:
                await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT)
            except Exception as error:  # noqa: BLE001 - a probe that could not run fails
                out.report(name, "set-up", "completes", f"{type(error).__name__}: {error}", False)


def main(argv: list[str] | None = None) -> int:
    home = Path(os.environ.get("ATRIUM_HOME") or REPO / ".atrium")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--gateway", default=os.environ.get("ATRIUM_GATEWAY_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument(
        "--identity", default=os.environ.get("ATRIUM_IDENTITY_URL", "http://127.0.0.1:8101")
    )
    parser.add_argument(
        "--billing", default=os.environ.get("ATRIUM_BILLING_URL", "http://127.0.0.1:8102")
    )
    parser.add_argument(
        "--kafka", default=os.environ.get("ATRIUM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    )
    parser.add_argument("--secrets", type=Path, default=home / "secrets.env")
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-flood", action="store_true", help="leave out H4")
    args = parser.parse_args(argv)
    for url in (args.gateway, args.identity, args.billing):
        if httpx.URL(url).host not in {"127.0.0.1", "localhost"}:
            parser.error(f"{url}: these probes send traffic to loopback only")
    installation = read_secrets(args.secrets)
    jwt_secret = os.environ.get("ATRIUM_JWT_SECRET") or installation.get("ATRIUM_JWT_SECRET")
    internal = os.environ.get("ATRIUM_INTERNAL_SECRET") or installation.get(
        "ATRIUM_INTERNAL_SECRET"
    )
    if not jwt_secret or not internal:
        parser.error(f"no ATRIUM_JWT_SECRET / ATRIUM_INTERNAL_SECRET in {args.secrets}")
    target = Target(args.gateway, args.identity, args.billing, args.kafka, jwt_secret, internal)
    target.gateway_kafka_password = os.environ.get(
        "ATRIUM_GATEWAY_KAFKA_PASSWORD"
    ) or installation.get("ATRIUM_GATEWAY_KAFKA_PASSWORD")
    out = Results()
    asyncio.run(http_probes(target, out))
    if not args.skip_flood:
        try:
            h4(target, out, args.connections, args.workers)
        except Exception as error:  # noqa: BLE001
            out.report("H4", "flood", "completes", f"{type(error).__name__}: {error}", False)
    print(f"{len(out.lines) - out.failed} passed, {out.failed} failed", flush=True)
    return 1 if out.failed else 0


if __name__ == "__main__":
    sys.exit(main())
