"""A throwaway Atrium environment: its own PostgreSQL and Kafka on free ports in a
temporary folder, provisioned, migrated and with every topic and ACL created, and its
own random secrets (the tests sign tokens and principals with `Sandbox.settings`).

The tests and the benchmarks run in one, so they work on a clean machine, next
to a running `make run`, and in CI; everything stops and is deleted when the
block ends, whether it ended well or not, also on Ctrl-C or SIGTERM (as root, that
includes the cluster's folder under /var/lib/atrium-postgres, but not the cached copy
of PostgreSQL's programs there: see `infra.cluster_user`).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.cli import prepare
from infra.local_kafka import LocalKafka
from infra.local_postgres import LocalPostgres
from infra.processes import free_port
from infra.secrets_file import KAFKA_ADMIN_PASSWORD, random_secrets, settings_fields
from shared.settings import ServiceName, Settings, atrium_home, service_role


@dataclass
class Sandbox:
    postgres: LocalPostgres
    kafka: LocalKafka
    settings: Settings

    secrets: dict[str, str]

    @property
    def environment(self) -> dict[str, str]:
        """What a service process started inside the sandbox needs in its environment
        (every service's Kafka password, each picks its own; not the administrative one)."""
        return {
            "ATRIUM_DATABASE_URL": self.settings.database_url,
            "ATRIUM_KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            **{name: value for name, value in self.secrets.items() if name != KAFKA_ADMIN_PASSWORD},
        }


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Within the block, SIGTERM ends the process as Ctrl-C does, by unwinding it (exit
    status 143), so that what the block started is stopped rather than left running.
    Only the main thread may handle signals: elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def sandbox(name: str = "atrium-sandbox") -> Iterator[Sandbox]:
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    secrets = random_secrets()
    postgres = LocalPostgres(folder / "postgres", port=free_port(), durable=False)
    settings = Settings(
        database_url=postgres.admin_url,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        **settings_fields(secrets),
    )
    kafka = LocalKafka(
        folder / "kafka",
        libs_dir=atrium_home() / "kafka-libs",
        port=int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1]),
        controller_port=free_port(),
        admin_username=settings.kafka_admin_username,
        admin_password=settings.kafka_admin_password,
        users={service_role(s): settings.kafka_password(s) for s in ServiceName},
    )
    try:
        with sigterm_unwinds():
            postgres.start()
            kafka.start()
            prepare(settings)
            yield Sandbox(postgres=postgres, kafka=kafka, settings=settings, secrets=secrets)
    finally:
        with contextlib.suppress(Exception):
            kafka.stop()
        with contextlib.suppress(Exception):
            postgres.destroy()
        shutil.rmtree(folder, ignore_errors=True)
