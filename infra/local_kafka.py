"""A single-node Apache Kafka (KRaft, combined broker and controller) run from its
Maven Central jars with the JDK.

The jars are fetched once by Maven from `infra/kafka/pom.xml`. Readiness is
asked of the broker itself (cluster metadata), never guessed by sleeping.

Nobody gets in without a password, also on loopback, where any local process could
otherwise produce any event. Clients authenticate with SASL/SCRAM-SHA-512 on the
broker listener: the administrative principal (a super user, for provisioning) and
one principal per service, all added to the metadata when the storage is formatted,
so they exist before the broker first listens. The StandardAuthorizer then lets a
principal do only what an ACL allows it (`infra.kafka_acls`), and nothing when no ACL
matches. The controller listener uses SASL/PLAIN with the administrative principal,
whose password is written only into this broker's own configuration: SCRAM cannot
serve that listener (the controller needs it before it has read the credentials from
the metadata), and left PLAINTEXT, whoever connects to it would be ANONYMOUS, which
the broker's own registration would need as a super user, so anyone on the machine
would be one. Every file holding a password is readable by its owner only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.processes import pid_alive, port_is_free, read_pid, terminate, wait_until
from shared.settings import KafkaConnection

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.yaml"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SAFE_CREDENTIAL = re.compile(r"[A-Za-z0-9._~-]+")
"""What a name or password may hold here: it goes unquoted into a properties file, a
JAAS line and the storage tool's `[name=…,password=…]`."""


def fetch_kafka_jars(libs_dir: Path) -> Path:
    """Copy Kafka and its runtime dependencies into `libs_dir`, once per pom version."""
    stamp = libs_dir / ".pom-sha256"
    wanted = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return libs_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = (
            "Maven (mvn) is needed to fetch Apache Kafka's jars; install it (apt-get install maven)"
        )
        raise RuntimeError(msg)
    staging = libs_dir.with_name(libs_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        check=True,
    )
    shutil.rmtree(libs_dir, ignore_errors=True)
    staging.rename(libs_dir)
    stamp.write_text(wanted)
    return libs_dir


@dataclass
class LocalKafka:
    home: Path
    libs_dir: Path
    port: int = 19092
    controller_port: int = 19093
    heap: str = "512m"
    admin_username: str = "atrium"
    admin_password: str = field(default="", repr=False)
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The services' principals and their passwords."""
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> KafkaConnection:
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=SCRAM_MECHANISM,
            username=self.admin_username,
            password=self.admin_password,
        )

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def credentials_stamp(self) -> Path:
        """A digest of the credentials the storage was formatted with."""
        return self.home / "credentials.sha256"

    def pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        return read_pid(self.pid_file)

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, *, timeout: float = 90) -> None:
        if self.is_running():
            return
        for port in (self.port, self.controller_port):
            if not port_is_free(port):
                msg = f"port {port} is taken by another process; cannot start Kafka there"
                raise RuntimeError(msg)
        self._check_credentials()
        fetch_kafka_jars(self.libs_dir)
        self.home.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            self.home.mkdir(mode=0o700)
        self._write_config()
        formatted = (self.data_dir / "meta.properties").exists()
        if formatted and self._read_stamp() != self._credentials_digest():
            print(
                f"Kafka's data in {self.data_dir} was formatted without these credentials "
                "(before Kafka required them, or with other passwords): formatting it "
                "afresh; the events it held are gone.",
                flush=True,
            )
            shutil.rmtree(self.data_dir)
            formatted = False
        if not formatted:
            self._format()
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                self._java_argv("kafka.Kafka", str(self.config_file)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self._process.pid))
        wait_until(self._ready, timeout=timeout, what="Kafka to serve metadata", interval=0.5)

    def stop(self, *, timeout: float = 30) -> None:
        pid = self.pid()
        if pid is not None:
            if self._process is not None:
                self._process.terminate()
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            else:
                terminate(pid, timeout=timeout)
        self._process = None
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: no flush, no controlled shutdown; its
        data stays, and `start` starts it again on it (the broker recovers its logs)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self._process is not None:
                self._process.wait()
            else:
                wait_until(lambda: not pid_alive(pid), timeout=30, what=f"Kafka ({pid}) to die")
        self._process = None
        self.pid_file.unlink(missing_ok=True)

    def _ready(self) -> bool:
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            msg = f"Kafka exited during start-up; see {self.log_file}:\n"
            msg += self.log_file.read_text()[-3000:] if self.log_file.exists() else ""
            raise RuntimeError(msg)
        return asyncio.run(broker_answers(self.admin))

    def _check_credentials(self) -> None:
        if not self.admin_password:
            msg = "the embedded Kafka needs a password for its administrative principal"
            raise RuntimeError(msg)
        for name, password in self._principals().items():
            if not (SAFE_CREDENTIAL.fullmatch(name) and SAFE_CREDENTIAL.fullmatch(password)):
                msg = (
                    f"the Kafka principal {name!r} or its password holds a character other "
                    "than letters, digits and ._~-, which the embedded Kafka does not take"
                )
                raise RuntimeError(msg)

    def _principals(self) -> dict[str, str]:
        return {self.admin_username: self.admin_password, **self.users}

    def _credentials_digest(self) -> str:
        lines = sorted(f"{name}:{password}" for name, password in self._principals().items())
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def _read_stamp(self) -> str | None:
        try:
            return self.credentials_stamp.read_text().strip()
        except FileNotFoundError:
            return None

    def _format(self) -> None:
        """Format the storage with every principal's SCRAM credentials. The passwords go
        to the JVM in an argument file, never on a command line others can list."""
        scram = [
            f"--add-scram={SCRAM_MECHANISM}=[name={name},password={password}]"
            for name, password in self._principals().items()
        ]
        self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(self.config_file),
            "--standalone",
            *scram,
        )
        _write_private(self.credentials_stamp, self._credentials_digest() + "\n")

    def _write_config(self) -> None:
        admin, password = self.admin_username, self.admin_password
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": (
                f"BROKER://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"BROKER://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "BROKER",
            "listener.security.protocol.map": "BROKER:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.broker.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.broker.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{admin}" password="{password}";'
            ),
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{admin}" password="{password}" user_{admin}="{password}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{admin}",
            "log.dirs": str(self.data_dir),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        _write_private(self.config_file, "".join(f"{k}={v}\n" for k, v in properties.items()))

    def _java_argv(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            msg = "a JDK (java 17+) is needed to run Apache Kafka"
            raise RuntimeError(msg)
        return [
            java,
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{self.libs_dir}/*",
            main_class,
            *args,
        ]

    def _java(self, main_class: str, *args: str) -> None:
        java, *arguments = self._java_argv(main_class, *args)
        argument_file = self.home / f".{main_class}.args"
        _write_private(argument_file, "\n".join(_quoted(argument) for argument in arguments))
        try:
            result = subprocess.run(
                [java, f"@{argument_file}"], capture_output=True, text=True, check=False
            )
        finally:
            argument_file.unlink(missing_ok=True)
        if result.returncode != 0:
            # Not the output itself: the storage tool prints every credential it adds.
            msg = f"{main_class} failed ({result.returncode}): {result.stderr[-3000:]}"
            raise RuntimeError(msg)


def _quoted(argument: str) -> str:
    """One argument of a JVM argument file."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only, from its creation on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _cluster_id() -> str:
    """Kafka cluster ids are 16 random bytes in URL-safe base64 without padding; like
    Kafka's own, never one that starts with '-' (the tool would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def broker_answers(kafka: KafkaConnection) -> bool:
    # While the broker starts, refused connections are expected: not worth a log line each.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return True


async def ensure_topics(
    kafka: KafkaConnection,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int,
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones it created."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topics if name not in existing]
        for name in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name, num_partitions=partitions, replication_factor=replication_factor
                        )
                    ]
                )
        return missing
    finally:
        await admin.close()
