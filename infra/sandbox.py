"""A throwaway Atrium environment: its own PostgreSQL and Kafka on free ports in a
temporary folder, provisioned, migrated and with every topic created.

The tests and the benchmarks run in one, so they work on a clean machine, next
to a running `make run`, and in CI; everything stops and is deleted when the
block ends, whether it ended well or not (as root, that includes the cluster's
folder under /var/lib/atrium-postgres, but not the cached copy of PostgreSQL's
programs there: see `infra.cluster_user`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.cli import atrium_home, prepare
from infra.local_kafka import LocalKafka
from infra.local_postgres import LocalPostgres
from infra.processes import free_port
from shared.settings import Settings


@dataclass
class Sandbox:
    postgres: LocalPostgres
    kafka: LocalKafka
    settings: Settings

    @property
    def environment(self) -> dict[str, str]:
        """What a service process started inside the sandbox needs in its environment."""
        return {
            "ATRIUM_DATABASE_URL": self.settings.database_url,
            "ATRIUM_KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
        }


@contextlib.contextmanager
def sandbox(name: str = "atrium-sandbox") -> Iterator[Sandbox]:
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    postgres = LocalPostgres(folder / "postgres", port=free_port(), durable=False)
    kafka = LocalKafka(
        folder / "kafka",
        libs_dir=atrium_home() / "kafka-libs",
        port=free_port(),
        controller_port=free_port(),
    )
    try:
        postgres.start()
        kafka.start()
        settings = Settings(
            database_url=postgres.admin_url,
            kafka_bootstrap_servers=kafka.bootstrap_servers,
        )
        prepare(settings)
        yield Sandbox(postgres=postgres, kafka=kafka, settings=settings)
    finally:
        with contextlib.suppress(Exception):
            kafka.stop()
        with contextlib.suppress(Exception):
            postgres.destroy()
        shutil.rmtree(folder, ignore_errors=True)
