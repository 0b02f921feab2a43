"""The embedded PostgreSQL starts from a checkout anywhere, also inside a folder only
its owner may cross, and leaves the mode of every folder it did not create alone."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import asyncpg
import pytest

from infra.cli import LocalInfrastructure
from infra.processes import free_port
from shared.settings import Settings

pytestmark = pytest.mark.integration


def modes(folders: list[Path]) -> dict[Path, int]:
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in folders}


async def answer(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        value: int = await connection.fetchval("SELECT 1")
        return value
    finally:
        await connection.close()


def test_atrium_infra_up_inside_a_closed_folder_changes_no_folder_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o700)
    checkout = home / "atrium"
    checkout.mkdir()
    monkeypatch.setenv("ATRIUM_HOME", str(checkout / ".atrium"))
    monkeypatch.delenv("ATRIUM_DATABASE_URL", raising=False)
    # Set only so that `up` leaves Kafka out: this test is about PostgreSQL.
    monkeypatch.setenv("ATRIUM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    settings = Settings(database_url=f"postgresql://atrium:atrium@127.0.0.1:{free_port()}/postgres")
    before = modes([checkout, *checkout.parents])

    infrastructure = LocalInfrastructure.from_settings(settings)
    assert infrastructure.postgres is not None
    try:
        assert infrastructure.up() == ["postgres"]
        assert infrastructure.status()["postgres"] == "running"
        assert asyncio.run(answer(settings.database_url)) == 1
    finally:
        infrastructure.clean()

    assert modes(list(before)) == before
    assert infrastructure.status()["postgres"] == "stopped"
    assert not infrastructure.postgres.cluster_dir.exists()
