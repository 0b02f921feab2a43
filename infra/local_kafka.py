"""A single-node Apache Kafka (KRaft, combined broker and controller) run from its
Maven Central jars with the JDK.

The jars are fetched once by Maven from `infra/kafka/pom.xml`. Readiness is
asked of the broker itself (cluster metadata), never guessed by sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.processes import pid_alive, port_is_free, read_pid, terminate, wait_until

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.yaml"


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
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

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
        fetch_kafka_jars(self.libs_dir)
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(self.config_file),
                "--standalone",
            )
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

    def _ready(self) -> bool:
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            msg = f"Kafka exited during start-up; see {self.log_file}:\n"
            msg += self.log_file.read_text()[-3000:] if self.log_file.exists() else ""
            raise RuntimeError(msg)
        return asyncio.run(broker_answers(self.bootstrap_servers))

    def _write_config(self) -> None:
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))

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
        result = subprocess.run(
            self._java_argv(main_class, *args), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            msg = f"{main_class} failed ({result.returncode}): {result.stdout}{result.stderr}"
            raise RuntimeError(msg)


def _cluster_id() -> str:
    """Kafka cluster ids are 16 random bytes in URL-safe base64 without padding; like
    Kafka's own, never one that starts with '-' (the tool would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def broker_answers(bootstrap_servers: str) -> bool:
    # While the broker starts, refused connections are expected: not worth a log line each.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
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
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int,
    replication_factor: int,
) -> list[str]:
    """Create the topics that do not exist yet; returns the ones it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
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
