"""Test helpers: run a service as a real process inside a sandbox, and wait for things."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.envelope import EventPayload, RawEnvelope, new_envelope
from contracts.events.identity import BillingMode, WorkspaceCreated
from contracts.permissions import Role
from infra.processes import free_port
from shared.principal import PRINCIPAL_HEADER, Principal, request_target, sign_principal
from shared.settings import KafkaConnection, ServiceName, Settings, get_settings

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent


def root_created(root_id: uuid.UUID | None = None, *, name: str = "Acme") -> WorkspaceCreated:
    """identity's announcement of a new account."""
    root_id = root_id or uuid.uuid4()
    return WorkspaceCreated(
        id=root_id,
        parent_id=None,
        root_id=root_id,
        billing_root_id=root_id,
        depth=0,
        name=name,
        billing_mode=BillingMode.OWN,
        api_access=True,
        strict_quota=True,
    )


def as_delivered(
    payload: EventPayload,
    *,
    root_id: uuid.UUID,
    workspace_id: uuid.UUID | None = None,
    producer: str = "identity",
    actor: str = "system",
) -> RawEnvelope:
    """An event as a consumer reads it off Kafka: enveloped, serialised, parsed back."""
    envelope = new_envelope(
        payload,
        producer=producer,
        root_id=root_id,
        workspace_id=workspace_id,
        actor=actor,
        correlation_id=None,
    )
    return RawEnvelope.model_validate_json(envelope.model_dump_json())


_WORKSPACE_IN_PATH = re.compile(r"^(?:/internal)?/v1/workspaces/([0-9a-fA-F-]{36})(/|$)")


@contextlib.asynccontextmanager
async def producer_as(service: ServiceName, settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A Kafka producer with `service`'s own principal, as its relay has one: what a test
    publishes with it is what that service could publish."""
    producer = AIOKafkaProducer(
        **settings.kafka_for(service).client_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


class SignedAs(httpx.Auth):
    """Calls a service directly as the gateway would: with a principal signed for each
    request (its method, target and body), whose workspace is the one in the request's
    path."""

    requires_request_body = True

    def __init__(
        self,
        user_id: str | None,
        *,
        email: str | None = None,
        role: Role | None = None,
        ancestor_super_admin: bool = False,
        api_key_id: uuid.UUID | None = None,
        workspace_id: uuid.UUID | None = None,
        secret: str | None = None,
    ) -> None:
        """`workspace_id` vouches for that workspace whatever the path says (to show what a
        service does with a principal meant for another workspace). `secret` defaults to
        this process's `ATRIUM_INTERNAL_SECRET`: the test session runs with the sandbox's."""
        self.user_id = None if api_key_id else user_id
        self.email = email
        self.role = None if api_key_id else role
        self.ancestor_super_admin = ancestor_super_admin
        self.api_key_id = api_key_id
        self.workspace_id = workspace_id
        self.secret = secret or get_settings().internal_secret

    def principal_for(self, path: str) -> Principal:
        match = _WORKSPACE_IN_PATH.match(path)
        workspace_id = self.workspace_id or (uuid.UUID(match.group(1)) if match else None)
        return Principal(
            user_id=self.user_id,
            email=self.email,
            email_verified=self.email is not None,
            api_key_id=self.api_key_id,
            workspace_id=workspace_id,
            role=self.role if workspace_id else None,
            ancestor_super_admin=self.ancestor_super_admin and workspace_id is not None,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        principal = self.principal_for(request.url.path)
        request.headers[PRINCIPAL_HEADER] = sign_principal(
            principal,
            method=request.method,
            target=request_target(request.url.raw_path.split(b"?")[0], request.url.query),
            body=request.content,
            secret=self.secret,
        )
        yield request


class ServiceProcess:
    """A service started as `processes` processes of `python -m services.<name>.app`, all
    on one free port (the kernel spreads the connections among them): to a test, one
    service at one URL. Each process logs to a file of its own."""

    def __init__(
        self,
        service: ServiceName,
        *,
        port: int,
        environment: dict[str, str],
        log_dir: Path,
        processes: int = 1,
    ) -> None:
        self.service = service
        self.port = port
        self.environment = environment
        self.log_files = (
            [log_dir / f"{service.value}-{port}.log"]
            if processes == 1
            else [log_dir / f"{service.value}-{port}-{n}.log" for n in range(1, processes + 1)]
        )
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def another(self) -> ServiceProcess:
        """One more process of this service, with its environment, on a port of its own
        (not started): a replica that can be reached apart from the others."""
        return ServiceProcess(
            self.service,
            port=free_port(),
            environment=self.environment,
            log_dir=self.log_file.parent,
        )

    @property
    def log_file(self) -> Path:
        """The first process's log."""
        return self.log_files[0]

    @property
    def pids(self) -> list[int]:
        assert self._processes, f"{self.service.value} is not started"
        return [process.pid for process in self._processes]

    @property
    def pid(self) -> int:
        """The first process's pid."""
        return self.pids[0]

    def start(self, *, extra_environment: dict[str, str] | None = None) -> ServiceProcess:
        """The processes started and ready; stopped again when they do not get ready."""
        self.spawn(extra_environment=extra_environment)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self, *, extra_environment: dict[str, str] | None = None) -> ServiceProcess:
        """The processes started, not yet waited for (`wait_ready`)."""
        environment = self._environment(extra_environment)
        self._processes = [self._spawn_one(log_file, environment) for log_file in self.log_files]
        return self

    def start_again(self) -> ServiceProcess:
        """The processes that have exited (killed, say) started again with the service's
        environment, the others left running; then every one waited for until ready: what
        a supervisor does when one process of a service dies."""
        environment = self._environment()
        self._processes = [
            self._spawn_one(log_file, environment) if process.poll() is not None else process
            for log_file, process in zip(self.log_files, self._processes, strict=True)
        ]
        self.wait_ready()
        return self

    def _environment(self, extra_environment: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            **self.environment,
            f"ATRIUM_{self.service.value.upper()}_URL": self.url,
            "ATRIUM_LOG_JSON": "false",
            **(extra_environment or {}),
        }

    def _spawn_one(self, log_file: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
        with log_file.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service.value}.app"],
                env=environment,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until every process listens on the port (a process listens only once it
        has started) and the service's /readyz answers 200."""
        wait_answering(
            f"{self.url}/readyz",
            self._processes,
            self.port,
            name=self.service.value,
            log_tail=self.log_tail,
            timeout=timeout,
        )

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL every process, or only `pid`: it gets no chance to finish anything."""
        self._wait(self._send(signal.SIGKILL, pid))

    def stop(self, pid: int | None = None) -> None:
        """SIGTERM every process, or only `pid`, and wait until it has finished (killed
        if it has not within `STOP_TIMEOUT_SECONDS`)."""
        self._wait(self._send(signal.SIGTERM, pid))

    def ask_to_stop(self, pid: int | None = None) -> None:
        """SIGTERM every process, or only `pid`, without waiting (`wait_stopped`)."""
        self._send(signal.SIGTERM, pid)

    def wait_stopped(self) -> None:
        self._wait([process for process in self._processes if process.poll() is None])

    def returncodes(self) -> list[int | None]:
        """Each process's exit status, None while it runs."""
        return [process.poll() for process in self._processes]

    def _send(self, signum: signal.Signals, pid: int | None) -> list[subprocess.Popen[bytes]]:
        targets = [
            process
            for process in self._processes
            if process.poll() is None and pid in {None, process.pid}
        ]
        for process in targets:
            process.send_signal(signum)
        return targets

    @staticmethod
    def _wait(processes: list[subprocess.Popen[bytes]]) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, characters: int = 4000) -> str:
        """The end of each process's log."""
        return "\n".join(
            (f"--- {log_file.name} ---\n" if len(self.log_files) > 1 else "")
            + log_file.read_text(errors="replace")[-characters:]
            for log_file in self.log_files
            if log_file.exists()
        )


STOP_TIMEOUT_SECONDS = 30
"""How long a test waits for a process it asked to stop, before it kills it: more than
a process takes to finish its requests and its work in hand (`shared.lifecycle`)."""


def wait_answering(
    url: str,
    processes: Sequence[subprocess.Popen[bytes]],
    port: int,
    *,
    name: str,
    log_tail: Callable[[], str],
    timeout: float,
) -> None:
    """Wait until every one of `processes` listens on `port` (so that it is not another
    process that answers) and `url` answers 200; raise with the log's tail when one of
    them exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                msg = f"{name} exited at start-up:\n{log_tail()}"
                raise RuntimeError(msg)
        if all(listens_on(process.pid, port) for process in processes):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    msg = f"{name} not ready after {timeout}s:\n{log_tail()}"
    raise TimeoutError(msg)


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a TCP socket listening on `port` (from Linux's /proc:
    the sockets listening on the port, then the process's open files)."""
    listening = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == LISTEN_STATE and int(local.rsplit(":", 1)[1], 16) == port:
                    listening.add(f"socket:[{inode}]")
    if not listening:
        return False
    with contextlib.suppress(OSError):
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if str(descriptor.readlink()) in listening:
                    return True
    return False


LISTEN_STATE = "0A"
"""TCP_LISTEN, as /proc/net/tcp writes a socket's state."""


def start_together(
    processes: Sequence[ServiceProcess], *, timeout: float = 120
) -> list[ServiceProcess]:
    """Every process spawned at once, then each waited for until ready: services start in
    parallel, and one that depends on others (the gateway) is ready once they are. When
    one does not start, those spawned are stopped."""
    spawned: list[ServiceProcess] = []
    try:
        for process in processes:
            spawned.append(process.spawn())
        for process in spawned:
            process.wait_ready(timeout=timeout)
    except BaseException:
        stop_together(spawned)
        raise
    return spawned


def stop_together(processes: Sequence[ServiceProcess]) -> None:
    """Every process asked to stop at once, then each waited for: the system stops in the
    time its slowest process takes, not in the sum of them all."""
    for process in processes:
        process.ask_to_stop()
    for process in processes:
        process.wait_stopped()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 15,
    what: str = "the condition",
) -> T:
    """Poll `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.05)


HALF_SENT_HEAD = b"GET /v1/workspaces HTTP/1.1\r\nHost: atrium\r\nX-Waiting: "
"""A request head that never ends: what a client that holds connections sends."""


async def hold_half_open_connections(
    host: str, port: int, count: int, *, source: str = "127.0.0.1", at_once: int = 200
) -> list[socket.socket]:
    """Open `count` connections from `source`, each sending the start of a request head
    and nothing more, `at_once` at a time; the caller holds and closes them. A
    connection the server closes or refuses on the way is kept too (`still_open`
    tells which the server keeps)."""
    loop = asyncio.get_running_loop()
    opened: list[socket.socket] = []
    gate = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with gate:
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.setblocking(False)
            opened.append(connection)
            with contextlib.suppress(OSError):
                connection.bind((source, 0))
                await loop.sock_connect(connection, (host, port))
                await loop.sock_sendall(connection, HALF_SENT_HEAD)

    await asyncio.gather(*(one() for _ in range(count)))
    return opened


async def raw_exchange(port: int, request: bytes) -> tuple[int, bytes, bytes]:
    """`request` as bytes on a connection of its own to 127.0.0.1:`port`, for what an HTTP
    client would refuse to send: the answer's status, its head in lower case, its body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.lower(), body


def still_open(connections: list[socket.socket]) -> int:
    """How many of `connections` the server holds: neither closed nor answered."""
    held = 0
    for connection in connections:
        try:
            connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            held += 1  # nothing to read and no end of stream
        except OSError:
            pass  # reset, or never connected
    return held


async def settled_consumers(kafka: KafkaConnection, group_id: str) -> int | None:
    """How many consumers share `group_id` once it has settled (every member has its
    partitions); None while it rebalances. A process that has just started is consuming
    only once its group has settled with it."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        [described] = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    # Every version of DescribeGroups: (error_code, group_id, state, ..., members, ...).
    [group] = described.groups
    return len(group[5]) if group[2] == "Stable" else None
