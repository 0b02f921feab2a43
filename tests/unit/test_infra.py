"""The local runners' own rules."""

import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cluster_user import first_closed_folder
from infra.local_kafka import _cluster_id


def test_a_kafka_cluster_id_never_looks_like_an_option() -> None:
    ids = {_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(cluster_id) == 22 for cluster_id in ids)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    # Not tmp_path: pytest keeps it under a folder of mode 0700.
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_the_cluster_user_is_stopped_by_the_first_folder_only_its_owner_may_cross(
    open_folder: Path,
) -> None:
    nobody = pwd.getpwnam("nobody")
    home = open_folder / "home"
    home.mkdir()
    home.chmod(0o700)
    checkout = home / "atrium"
    checkout.mkdir()
    checkout.chmod(0o755)

    assert first_closed_folder(open_folder, nobody) is None
    assert first_closed_folder(checkout, nobody) == home


def test_sigterm_within_a_sandbox_block_unwinds_it_as_ctrl_c_does(tmp_path: Path) -> None:
    """A benchmark stopped with SIGTERM stops what its sandbox started."""
    cleaned = tmp_path / "cleaned"
    script = (
        "import sys, time\n"
        "from infra.sandbox import sigterm_unwinds\n"
        "try:\n"
        "    with sigterm_unwinds():\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(30)\n"
        "finally:\n"
        f"    open({str(cleaned)!r}, 'w').close()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert cleaned.exists()
