"""The test fixtures themselves: each test gets a migrated, empty database of its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlmodel import SQLModel

from cxdesk.store.db import (
    AUTOCHECKPOINT_PAGES,
    configure_sqlite,
    make_engine,
    read_session,
    transaction,
)
from cxdesk.store.models import Team, Ticket
from tests.threads import at_once


def test_engine_gives_a_migrated_empty_schema(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        for table in SQLModel.metadata.tables.values():
            made = 1 if table.name == "desk_revision" else 0  # its one row, made by 0024
            assert session.scalar(select(func.count()).select_from(table)) == made, table.name


def test_sqlite_has_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            checkpoint_at = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert checkpoint_at == AUTOCHECKPOINT_PAGES  # the worker checkpoints (test_delivery)
    finally:
        engine.dispose()


# Run twice on each backend: the second run fails if the first one's team is still there (when
# both land on the same xdist worker; always under plain pytest). The id checks that sequences
# start again from 1 too.
@pytest.mark.parametrize("attempt", [1, 2])
def test_data_does_not_leak_between_tests(engine: Engine, attempt: int) -> None:
    with transaction(engine) as session:
        assert session.scalars(select(Team)).all() == []
        team = Team(name="x")
        session.add(team)
        session.flush()
        assert team.id == 1


def test_programs_opening_a_new_sqlite_desk_at_once_all_get_in(tmp_path: Path) -> None:
    """The first connections to a new file each switch it to WAL, and SQLite refuses one of
    two that collide at once ("database is locked", without the busy wait): rare (a few
    rounds in a hundred here) but it stopped one of two programs starting a new desk
    together. 200 rounds of eight connections configured at once on a new file: every one
    gets in, and the file is in WAL."""
    for attempt in range(200):
        path = tmp_path / f"new-{attempt}.db"
        connections = [
            sqlite3.connect(path, isolation_level=None, check_same_thread=False) for _ in range(8)
        ]
        try:
            assert at_once(configure_sqlite, connections) == []
            assert connections[0].execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            for connection in connections:
                connection.close()
