"""`atrium-infra`: set up and run Atrium on this machine.

    atrium-infra up        start the embedded PostgreSQL and Kafka (idempotent)
    atrium-infra down      stop them
    atrium-infra status    say what runs
    atrium-infra clean     stop them and delete their data
    atrium-infra migrate   provision schemas and logins, migrate, create topics
    atrium-infra run       all of the above, then every service in the foreground,
                           and the web console (ATRIUM_CONSOLE_PORT, default 8080)
    atrium-infra events    list, retry or discard the events services parked
                           (`atrium-infra events --help`)

Setting ATRIUM_DATABASE_URL or ATRIUM_KAFKA_BOOTSTRAP_SERVERS points at an
external server instead, and the embedded one is neither started nor stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from contracts.topics import ALL_TOPICS
from infra import events
from infra.kafka_acls import ensure_acls
from infra.local_kafka import LocalKafka, ensure_topics
from infra.local_postgres import LocalPostgres
from infra.processes import port_is_free
from infra.provision import provision
from infra.secrets_file import (
    ensure_installation_secrets,
    read_secrets,
    secret_names,
    service_environment,
)
from infra.supervisor import Program, Supervisor
from services.console.settings import ConsoleSettings
from shared.lifecycle import LONGEST_STOP_SECONDS
from shared.metrics import MULTIPROCESS_DIRECTORY, empty_multiprocess_directory, forget_process
from shared.migrations import upgrade_all
from shared.settings import (
    REPO,
    ServiceName,
    Settings,
    atrium_home,
    installation_secrets_file,
    installation_settings,
    service_role,
)


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
                home / "kafka",
                libs_dir=home / "kafka-libs",
                port=port,
                controller_port=port + 1,
                admin_username=settings.kafka_admin_username,
                admin_password=settings.kafka_admin_password,
                users={
                    service_role(service): settings.kafka_password(service)
                    for service in ServiceName
                },
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
    """Schemas and logins, migrations, topics and their ACLs: everything the services
    expect to find."""
    asyncio.run(provision(settings))
    migrated = upgrade_all(settings)
    created = asyncio.run(
        ensure_topics(
            settings.kafka_admin(),
            [topic.value for topic in ALL_TOPICS],
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )
    )
    granted = asyncio.run(ensure_acls(settings.kafka_admin()))
    acls = f"{granted} ACLs" if granted else "no ACLs (Kafka has no authorizer)"
    print(f"migrated: {', '.join(migrated)}; topics created: {len(created)}; {acls}", flush=True)


def runnable_services() -> list[ServiceName]:
    return [s for s in ServiceName if (REPO / "services" / s.value / "app.py").exists()]


def run_in_foreground(settings: Settings) -> int:
    """Every service, as `ATRIUM_<SERVICE>_PROCESSES` processes on its one address, each
    with the installation's secrets in its environment (and of the Kafka passwords, its
    own only), and then the web console, kept running until Ctrl-C. The processes of a
    service write their metrics to one directory of their own, so that a scrape of any
    of them counts them all (`shared.metrics`)."""
    installation = read_secrets(installation_secrets_file())
    services = runnable_services()
    console = ConsoleSettings()
    taken = [service for service in services if not _address_is_free(settings, service)]
    for service in taken:
        print(
            f"{settings.base_url_for(service)} ({service.value}) is in use: is Atrium "
            "already running? Its processes would share the address with this one's.",
            file=sys.stderr,
        )
    if not port_is_free(console.port):
        print(
            f"{console.url} (console) is in use: set ATRIUM_CONSOLE_PORT to another port.",
            file=sys.stderr,
        )
        return 1
    if taken:
        return 1
    metrics = {
        service: empty_multiprocess_directory(atrium_home() / "metrics" / service.value)
        for service in services
    }
    programs = [
        Program(
            name,
            [sys.executable, "-m", f"services.{service.value}.app"],
            environment={
                **service_environment(service, installation, os.environ),
                "PYTHONUNBUFFERED": "1",
                MULTIPROCESS_DIRECTORY: str(metrics[service]),
            },
            cwd=REPO,
            on_exit=functools.partial(forget_process, metrics[service]),
        )
        for service in services
        for name in process_names(service, settings.processes_for(service))
    ]
    programs.append(console_program(settings))
    print("\nAtrium is starting:", flush=True)
    for service in services:
        processes = settings.processes_for(service)
        count = f"{processes} processes" if processes > 1 else "1 process"
        print(f"  {service.value:<9} {settings.base_url_for(service):<24} {count}", flush=True)
    print(
        f"  console   {console.url:<24} development sign-in by email\n"
        f"  API docs  {settings.gateway_url}/docs\n"
        "A process that stops is started again; Ctrl-C stops everything.\n",
        flush=True,
    )
    supervisor = Supervisor(
        programs, stop_timeout=settings.stop_drain_seconds + LONGEST_STOP_SECONDS
    )
    return asyncio.run(supervisor.run())


def console_program(settings: Settings) -> Program:
    """The web console: a client of the gateway like any other, with the development
    sign-in on (it signs with the installation's secret, as `atrium token` does)."""
    return Program(
        "console",
        [sys.executable, "-m", "services.console"],
        environment={
            "ATRIUM_CONSOLE_GATEWAY_URL": settings.gateway_url,
            "ATRIUM_CONSOLE_DEVELOPMENT_SIGN_IN": "true",
            **os.environ,
            "PYTHONUNBUFFERED": "1",
        },
        cwd=REPO,
    )


def process_names(service: ServiceName, processes: int) -> list[str]:
    """How the log prefixes name the processes of `service`: by the service's name alone
    when it runs as one."""
    if processes == 1:
        return [service.value]
    return [f"{service.value}-{n}" for n in range(1, processes + 1)]


def _address_is_free(settings: Settings, service: ServiceName) -> bool:
    """Whether nothing listens on the service's port yet. Its processes share the port
    (`SO_REUSEPORT`), and so would those of an earlier `make run` that still runs."""
    port = urlsplit(settings.base_url_for(service)).port or 80
    return port_is_free(port)


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
    if needs_installation_secrets(args.command):
        ensure_installation_secrets(installation_secrets_file())
    settings = installation_settings()
    if args.command == "events":
        return events.run(args, settings)
    return manage_infrastructure(args.command, settings)


def needs_installation_secrets(command: str) -> bool:
    """Whether `command` needs the installation's secrets file, created the first time:
    to run the services, or to start the embedded Kafka (formatted with its principals'
    passwords), unless the environment brings every secret itself."""
    if all(name in os.environ for name in secret_names()):
        return False
    embedded = not {"ATRIUM_DATABASE_URL", "ATRIUM_KAFKA_BOOTSTRAP_SERVERS"} <= set(os.environ)
    return command == "run" or (command in {"up", "migrate"} and embedded)


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
