"""``store.prepared``: statements compiled once and run on the driver, inside the session's
transaction, see what the session holds as its own statements do; and the check-in's other
quick paths (rows over arrays, SQLite's times, the identity map, a context kept) give what the
slow ones gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, create_engine, func, insert, inspect
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DataError
from sqlmodel import col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from cxdesk.engine.context import LazyFields, after_tasks
from cxdesk.engine.piped import PipeContext
from cxdesk.store import in_hand
from cxdesk.store.db import transaction
from cxdesk.store.driver_sql import _quick
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Team
from cxdesk.store.prepared import ManyRows, Prepared

_TEAMS_NAMED = Prepared(
    sa_select(func.count()).select_from(Team).where(col(Team.name) == bindparam("name"))
)


def test_a_prepared_read_sees_the_sessions_pending_changes(engine: Engine) -> None:
    upgrade(engine)
    with transaction(engine) as session:
        session.add(Team(name="Pending"))  # not flushed yet: the read flushes it, as ORM's do
        assert _TEAMS_NAMED.scalar(session, {"name": "Pending"}) == 1
        with session.no_autoflush:  # and keeps the session's rule when told not to
            session.add(Team(name="Later"))
            assert _TEAMS_NAMED.scalar(session, {"name": "Later"}) == 0
        assert _TEAMS_NAMED.scalar(session, {"name": "Later"}) == 1


def test_many_rows_write_what_executemany_writes(engine: Engine) -> None:
    """PostgreSQL's one INSERT over arrays (SQLite's executemany) writes the rows, their
    values converted by the column types, a time in another zone as its UTC instant."""
    upgrade(engine)
    teams = ManyRows(Team.__table__, ["name", "created_at"])  # type: ignore[attr-defined]
    paris = timezone(timedelta(hours=1))
    written = [
        {"name": "Arrays", "created_at": datetime(2026, 3, 1, 9, 30, 0, 5, tzinfo=paris)},
        {"name": "Zoë's", "created_at": datetime(2026, 3, 1, 8, 31, tzinfo=UTC)},
    ]
    with transaction(engine) as session:
        teams.write(session, written)
        teams.write(session, [])
    with transaction(engine) as session:
        found = session.exec(
            select(Team).where(col(Team.name).in_(["Arrays", "Zoë's"])).order_by(col(Team.id))
        ).all()
    assert [(t.name, t.created_at) for t in found] == [
        ("Arrays", datetime(2026, 3, 1, 8, 30, 0, 5, tzinfo=UTC)),
        ("Zoë's", datetime(2026, 3, 1, 8, 31, tzinfo=UTC)),
    ]


def test_many_rows_never_cut_a_value_longer_than_its_column(engine: Engine) -> None:
    """A name longer than its ``VARCHAR(100)``: PostgreSQL raises ``DataError`` as the
    insert of each row did, and writes none of the rows (a cast to the column's own type
    would cut it silently); SQLite, which keeps no length, writes it whole as before."""
    upgrade(engine)
    teams = ManyRows(Team.__table__, ["name", "created_at"])  # type: ignore[attr-defined]
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    long_name = "L" * 101
    rows = [{"name": "Short", "created_at": at}, {"name": long_name, "created_at": at}]
    if engine.dialect.name == "postgresql":
        with pytest.raises(DataError), transaction(engine) as session:
            teams.write(session, rows)
        expected: list[str] = []
    else:
        with transaction(engine) as session:
            teams.write(session, rows)
        expected = sorted(["Short", long_name])
    with transaction(engine) as session:
        found = select(Team.name).where(col(Team.name).in_(["Short", long_name, "L" * 100]))
        assert sorted(session.exec(found).all()) == expected


_ADD_TEAM = Prepared(insert(Team), keys=["name", "created_at"])
_TEAMS = Team.__table__  # type: ignore[attr-defined]
_ADD_TEAM_ID = Prepared(insert(_TEAMS).returning(_TEAMS.c.id), keys=["name", "created_at"])


def test_a_prepared_statement_in_a_nested_transaction_is_rolled_back_with_it(
    engine: Engine,
) -> None:
    """Run inside ``begin_nested()``, a statement is in its SAVEPOINT: the block raising
    takes it back, and what ran before the block is kept."""
    upgrade(engine)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with transaction(engine) as session:
        _ADD_TEAM.execute(session, {"name": "Before", "created_at": at})
        with pytest.raises(ValueError), session.begin_nested():
            _ADD_TEAM.execute(session, {"name": "Inside", "created_at": at})
            raise ValueError("the row fails")
        _ADD_TEAM.execute(session, {"name": "After", "created_at": at})
    with transaction(engine) as session:
        found = select(Team.name).where(col(Team.name).in_(["Before", "Inside", "After"]))
        assert sorted(session.exec(found).all()) == ["After", "Before"]


def test_a_quick_time_processor_writes_sqlalchemys_text() -> None:
    """SQLite's times in UTC are written by isoformat: the very text of SQLAlchemy's processor,
    and anything else goes through it."""
    dialect = create_engine("sqlite://").dialect
    kind = UTCDateTime()
    slow = kind._cached_bind_processor(dialect)
    assert slow is not None
    quick = _quick(slow, kind, dialect)
    assert quick is not slow
    for value in (
        datetime(2026, 12, 7, 21, 4, 39, tzinfo=UTC),  # no microseconds: still written
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=-7))),
        None,
    ):
        assert quick(value) == slow(value)
    with pytest.raises(ValueError):  # a naive time is refused as before
        quick(datetime(2026, 1, 1))


def test_in_hand_get_answers_as_session_get(engine: Engine) -> None:
    """The identity map's loaded object straight; an expired one, or none, as ``session.get``
    (which reads it)."""
    upgrade(engine)
    with transaction(engine) as session:
        team = Team(name="In hand")
        session.add(team)
        session.flush()
        assert team.id is not None
        assert in_hand.get(session, Team, team.id) is team
        assert in_hand.get(session, Team, team.id + 1000) is None
        session.expire(team)
        assert in_hand.get(session, Team, team.id) is team
        assert "name" in team.__dict__  # read again, as session.get does


def _attached(session: Any, row: Any) -> tuple[Any, ...]:
    state = inspect(row)
    return (
        state.key, state.persistent, state.modified, state.expired, set(state.committed_state),
        set(state.expired_attributes), set(state.unloaded), state.session_id == session.hash_key,
        row in session, row in session.dirty, row in session.new,
        sorted(state.dict.keys() - {"_sa_instance_state"}),
        set(row.__pydantic_fields_set__),
    )  # fmt: skip


def test_a_written_row_is_attached_as_make_transient_to_detached_and_add_attach_it(
    engine: Engine,
) -> None:
    """``in_hand.written``'s direct attach leaves the object, the session and its identity map
    as the two calls it stands for; ``session.get`` answers with the object."""
    upgrade(engine)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with transaction(engine) as session:
        quick = in_hand.insert_row(session, in_hand.new_row(Team, {"name": "Q", "created_at": at}))
        slow = in_hand.new_row(Team, {"name": "S", "created_at": at})
        slow.id = _ADD_TEAM_ID.scalar(session, {"name": "S", "created_at": at})
        in_hand._written_slowly(session, slow)
        assert _attached(session, quick)[1:] == _attached(session, slow)[1:]
        quick.name, slow.name = "Q2", "S2"  # both tracked as changes again
        assert _attached(session, quick)[1:] == _attached(session, slow)[1:]
        assert session.get(Team, quick.id) is quick
        assert in_hand.get(session, Team, quick.id) is quick
        session.flush()
        assert _attached(session, quick)[1:] == _attached(session, slow)[1:]
    with transaction(engine) as session:
        assert session.get(Team, quick.id).name == "Q2"  # type: ignore[union-attr]


def test_a_row_written_in_a_rolled_back_savepoint_leaves_no_stale_object(
    engine: Engine,
) -> None:
    """The object of a row written in a savepoint rolled back gives way to the row written
    next with its id (SQLite's next id is the same)."""
    upgrade(engine)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    with transaction(engine) as session:
        with pytest.raises(ValueError), session.begin_nested():
            gone = in_hand.insert_row(
                session, in_hand.new_row(Team, {"name": "Gone", "created_at": at})
            )
            raise ValueError("the row fails")
        kept = in_hand.insert_row(
            session, in_hand.new_row(Team, {"name": "Kept", "created_at": at})
        )
        assert session.get(Team, kept.id) is kept
        if kept.id == gone.id:
            assert gone not in session
        assert [team.name for team in session.exec(select(Team).where(Team.id == kept.id))] == [
            "Kept"
        ]


def test_a_context_kept_for_the_next_workflow_forgets_what_it_worked_out() -> None:
    """After a workflow that only queued messages the next one reads the same context, its
    fields worked out on demand worked out again (the wait in words, in the language then)."""
    worked_out: list[str] = []

    def position() -> dict[str, str]:
        worked_out.append("QueuePosition")
        return {"QueuePosition": str(len(worked_out))}

    context = PipeContext(ticket=LazyFields({"key": "EXP-1"}, {"QueuePosition": position}))
    assert context.lookup("tck://Field/", "QueuePosition") == "1"
    assert context.lookup("tck://Field/", "QueuePosition") == "1"  # once
    sent = [{"type": "send_sms"}, {"type": "send_email"}]
    kept = after_tasks(context, sent)
    assert kept is not None and kept.lookup("tck://Field/", "key") == "EXP-1"
    assert kept.lookup("tck://Field/", "QueuePosition") == "2"
    assert after_tasks(context, [*sent, {"type": "comment", "body": "x"}]) is None
