"""`atrium-infra`: set up and run Atrium on this machine.

    atrium-infra up        start the embedded PostgreSQL and Kafka (idempotent)
    atrium-infra down      stop them
    atrium-infra status    say what runs
    atrium-infra clean     stop them and delete their data
    atrium-infra migrate   provision schemas and logins, migrate, create topics
    atrium-infra run       all of the above, then every service in the foreground
    atrium-infra events    list, retry or discard the events services parked
                           (`atrium-infra events --help`)

Setting ATRIUM_DATABASE_URL or ATRIUM_KAFKA_BOOTSTRAP_SERVERS points at an
external server instead, and the embedded one is neither started nor stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from contracts.topics import ALL_TOPICS
from infra import events
from infra.local_kafka import LocalKafka, ensure_topics
from infra.local_postgres import LocalPostgres
from infra.provision import provision
from shared.migrations import upgrade_all
from shared.settings import ServiceName, Settings

REPO = Path(__file__).resolve().parent.parent


def atrium_home() -> Path:
    return Path(os.environ.get("ATRIUM_HOME", REPO / ".atrium"))


@dataclass
class LocalInfrastructure:
    postgres: LocalPostgres | None
    kafka: LocalKafka | None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalInfrastructure:
        home = atrium_home()
        postgres = None
        if "ATRIUM_DATABASE_URL" not in os.environ:
            admin = urlsplit(settings.database_url)
            postgres = LocalPostgres(home / "postgres", port=admin.port or 55432)
        kafka = None
        if "ATRIUM_KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
            port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
            kafka = LocalKafka(
                home / "kafka", libs_dir=home / "kafka-libs", port=port, controller_port=port + 1
            )
        return cls(postgres, kafka)

    def up(self) -> list[str]:
        """Start what is not running yet; returns the names of what it started."""
        started = []
        if self.postgres is not None and not self.postgres.is_running():
            print(
                f"starting PostgreSQL on 127.0.0.1:{self.postgres.port}"
                f" (data in {self.postgres.data_dir}) …",
                flush=True,
            )
            self.postgres.start()
            started.append("postgres")
        if self.kafka is not None and not self.kafka.is_running():
            print(f"starting Kafka on {self.kafka.bootstrap_servers} …", flush=True)
            self.kafka.start()
            started.append("kafka")
        return started

    def down(self, only: list[str] | None = None) -> None:
        if self.kafka is not None and (only is None or "kafka" in only):
            self.kafka.stop()
        if self.postgres is not None and (only is None or "postgres" in only):
            self.postgres.stop()

    def clean(self) -> None:
        """Stop both and delete their data (Kafka's jars stay)."""
        if self.kafka is not None:
            self.kafka.stop()
            shutil.rmtree(self.kafka.home, ignore_errors=True)
        if self.postgres is not None:
            self.postgres.destroy()

    def status(self) -> dict[str, str]:
        return {
            "postgres": "external"
            if self.postgres is None
            else ("running" if self.postgres.is_running() else "stopped"),
            "kafka": "external"
            if self.kafka is None
            else ("running" if self.kafka.is_running() else "stopped"),
        }


def prepare(settings: Settings) -> None:
    """Schemas and logins, migrations, topics: everything the services expect to find."""
    asyncio.run(provision(settings))
    migrated = upgrade_all(settings)
    created = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            [topic.value for topic in ALL_TOPICS],
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )
    )
    print(f"migrated: {', '.join(migrated)}; topics created: {len(created)}", flush=True)


def runnable_services() -> list[ServiceName]:
    return [s for s in ServiceName if (REPO / "services" / s.value / "app.py").exists()]


def run_in_foreground(settings: Settings) -> int:
    from honcho.manager import Manager  # noqa: PLC0415 - only `run` needs it

    manager = Manager()
    for service in runnable_services():
        manager.add_process(
            service.value,
            f"{sys.executable} -m services.{service.value}.app",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=str(REPO),
        )
    print("\nAtrium is starting:", flush=True)
    for service in runnable_services():
        print(f"  {service.value:<9} {settings.base_url_for(service)}", flush=True)
    print(f"  API docs  {settings.gateway_url}/docs\nCtrl-C stops everything.\n", flush=True)
    manager.loop()
    return int(manager.returncode or 0)


COMMANDS = {
    "up": "start the embedded PostgreSQL and Kafka (idempotent)",
    "down": "stop them",
    "status": "say what runs",
    "clean": "stop them and delete their data",
    "migrate": "provision schemas and logins, migrate, create topics",
    "run": "all of the above, then every service in the foreground",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atrium-infra", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command, summary in COMMANDS.items():
        commands.add_parser(command, help=summary)
    events.add_commands(commands)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "events":
        return events.run(args, settings)
    return manage_infrastructure(args.command, settings)


def manage_infrastructure(command: str, settings: Settings) -> int:
    infrastructure = LocalInfrastructure.from_settings(settings)
    if command == "status":
        for name, state in infrastructure.status().items():
            print(f"{name}: {state}")
        return 0
    if command == "down":
        infrastructure.down()
        return 0
    if command == "clean":
        infrastructure.clean()
        return 0
    started = infrastructure.up()
    if command == "up":
        return 0
    try:
        prepare(settings)
        if command == "migrate":
            return 0
        return run_in_foreground(settings)
    finally:
        if command == "run":
            print(f"stopping {', '.join(started) or 'nothing we started'}", flush=True)
            infrastructure.down(only=started)


if __name__ == "__main__":
    sys.exit(main())
