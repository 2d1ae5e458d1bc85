"""The test fixtures themselves: each test gets a migrated, empty database of its own."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlmodel import SQLModel

from cxdesk.store.db import AUTOCHECKPOINT_PAGES, make_engine, read_session, transaction
from cxdesk.store.models import Team, Ticket


def test_engine_gives_a_migrated_empty_schema(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        for table in SQLModel.metadata.tables.values():
            assert session.scalar(select(func.count()).select_from(table)) == 0, table.name


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
