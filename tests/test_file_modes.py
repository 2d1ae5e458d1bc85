"""Owner-only desk files (issue 13): what cxdesk creates is 0600 (folders 0700) whatever the
umask, and ``cxdesk init`` tightens an older desk's files, one line per file it changed.

The desk here is the default SQLite file under this test's ``CXDESK_HOME``, made by cxdesk
itself (the ``engine`` fixture's database is a copy the test suite makes, not cxdesk).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from cxdesk import locations
from cxdesk.cli import common
from cxdesk.store.db import make_engine, transaction
from tests.cli_helpers import TEST_PASSWORD, Cli, prove_as_a_script, run_main


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022], ids=["umask000", "umask022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """This test runs under the given umask (each xdist worker is its own process)."""
    before = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(before)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """``run("init")``: cxdesk on the default desk of this test's CXDESK_HOME."""
    yield partial(run_main, capsys)
    common.engine_for(f"sqlite:///{locations.default_database_path()}").dispose()
    common.engine_for.cache_clear()


def test_every_file_cxdesk_creates_is_owner_only(
    umask: int, run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", TEST_PASSWORD)  # the first admin's
    prove_as_a_script(monkeypatch)
    result = run("init", "--admin", "admin", "--name", "Admin", "--email", "admin@example.com")
    assert result.exit_code == 0, str(result)
    database = locations.default_database_path()
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600

    # After a write, with a connection still open, SQLite's WAL and SHM files exist.
    engine = make_engine(f"sqlite:///{database}")
    try:
        with transaction(engine) as session:
            session.execute(text("CREATE TABLE scratch (x INTEGER)"))
        wal = database.with_name(database.name + "-wal")
        shm = database.with_name(database.name + "-shm")
        assert (mode(wal), mode(shm)) == (0o600, 0o600)
    finally:
        engine.dispose()

    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("tickets.csv", "tickets.xlsx"):
        result = run("tickets", "export", "-o", str(exports / name), "--days", "0")
        assert result.exit_code == 0, str(result)
        assert mode(exports / name) == 0o600, name
    assert mode(exports) == 0o777 & ~umask  # the user's own folder: left as it was

    # A database in folders that do not exist yet: the new folders are the desk's, 0700.
    elsewhere = tmp_path / "shared" / "desks" / "support" / "desk.db"
    engine = make_engine(f"sqlite:///{elsewhere}")
    engine.dispose()
    assert [mode(p) for p in (elsewhere, elsewhere.parent, elsewhere.parent.parent)] == [
        0o600,
        0o700,
        0o700,
    ]


def test_private_file_helpers_ignore_the_umask(umask: int, tmp_path: Path) -> None:
    session = tmp_path / "state" / "cxdesk" / "session.json"
    locations.write_private_file(session, b'{"user": "maya"}')
    assert mode(session) == 0o600 and mode(session.parent) == 0o700
    assert session.read_bytes() == b'{"user": "maya"}'
    session.chmod(0o644)
    locations.write_private_file(session, b"{}")  # replacing it makes it private again
    assert mode(session) == 0o600 and session.read_bytes() == b"{}"
    assert [p.name for p in session.parent.iterdir()] == ["session.json"]  # no temporary left

    # The export's way: a temporary file beside the destination, in place only when whole.
    export = tmp_path / "tickets.csv"
    export.write_bytes(b"old")
    with pytest.raises(OSError), locations.private_replacement(export) as temporary:
        assert temporary.parent == tmp_path and mode(temporary) == 0o600
        temporary.write_bytes(b"half")
        raise OSError("disk full")
    assert export.read_bytes() == b"old" and not temporary.exists()
    with locations.private_replacement(export) as temporary:
        temporary.write_bytes(b"new")
        assert export.read_bytes() == b"old"  # not replaced until the block ends
    assert export.read_bytes() == b"new" and mode(export) == 0o600

    assert locations.create_private_file(tmp_path / "new.db")
    assert mode(tmp_path / "new.db") == 0o600
    assert not locations.create_private_file(tmp_path / "new.db")  # exists: left alone


def test_init_makes_an_older_desks_files_owner_only_and_says_so(run: Cli) -> None:
    assert run("init").exit_code == 0
    database = locations.default_database_path()
    config = locations.config_file()
    config.parent.mkdir()
    config.write_text('survey_url = "https://survey.example.com"\n', encoding="utf-8")
    # What an older cxdesk left: everything readable by every local account.
    engine = make_engine(f"sqlite:///{database}")
    try:
        with transaction(engine) as session:  # the WAL and SHM exist while it is open
            session.execute(text("CREATE TABLE scratch (x INTEGER)"))
        wal = database.with_name(database.name + "-wal")
        shm = database.with_name(database.name + "-shm")
        for path in (database, wal, shm, config):
            path.chmod(0o644)
        for folder in (database.parent, config.parent):
            folder.chmod(0o755)

        result = run("init")
        assert result.exit_code == 0, str(result)
        told = [line for line in result.stdout.splitlines() if line.startswith("Made owner-only")]
        assert sorted(told) == sorted(
            [f"Made owner-only (was 0755): {database.parent}"]
            + [f"Made owner-only (was 0755): {config.parent}"]
            + [f"Made owner-only (was 0644): {p}" for p in (database, wal, shm, config)]
        ), str(result)
        assert [mode(p) for p in (database, wal, shm, config)] == [0o600] * 4
        assert [mode(p) for p in (database.parent, config.parent)] == [0o700] * 2

        again = run("init")
        assert again.exit_code == 0 and "Made owner-only" not in again.stdout, str(again)
    finally:
        engine.dispose()
