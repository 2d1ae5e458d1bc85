"""The kanban's column counts (``store.pages.kanban_columns``), remembered per bucket of past
dates (``views.all_dates``, ``store.day_counts``): equal to a plain count of every ticket by
status, for the whole desk and one team, after pulls, status changes, resolutions from
another process, a team change, and changes to tickets created days, months and years ago,
on SQLite and PostgreSQL; read again unchanged, only today's tickets are counted."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, update
from sqlalchemy import select as sa_select
from sqlmodel import col

from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_team, get_user
from cxdesk.store.models import Ticket
from cxdesk.store.pages import kanban_columns
from cxdesk.store.tickets import update_ticket
from tests.desk import pull
from tests.test_view_summary import NOW, local, placed_desk, ticket_statements, zone
from tests.test_view_summary_writers import WRITER
from tests.test_views import make_ticket

__all__ = ["zone"]  # the fixture, used by name

OLD = [(2019, 5, 5, 12, 0), (2024, 12, 31, 23, 0), (2025, 6, 15, 8, 0), (2026, 10, 2, 9, 0)]
"""Tickets created years and months ago: the far past, the month buckets, last month."""


def kanban_desk(engine: Engine, zone: ZoneInfo) -> list[str]:
    """``placed_desk``'s tickets (the last month's days, today, a ticket dated ahead) and
    ``OLD``'s, in both teams; their keys."""
    keys = placed_desk(engine, zone)
    for number, parts in enumerate(OLD):
        key = make_ticket(engine, f"Old {number}", ("360", "Stats iQ")[number % 2])
        when = local(zone, parts)
        with transaction(engine) as session:
            session.execute(
                update(Ticket).where(col(Ticket.key) == key)
                .values(created_at=when, updated_at=when, status=("open", "new")[number % 2])
            )  # fmt: skip
        keys.append(key)
    return keys


def plain_counts(engine: Engine, team: str | None) -> dict[str, int]:
    """Every ticket (of ``team``) by status, one ``GROUP BY``, closed left out."""
    with read_session(engine) as session:
        statement = sa_select(col(Ticket.status), func.count()).group_by(col(Ticket.status))
        if team:
            statement = statement.where(col(Ticket.team_id) == get_team(session, team).id)
        counted = dict(session.execute(statement).all())
        columns = kanban_columns(session, team=team)
    return {c.status: counted.get(c.status, 0) for c in columns}


def column_counts(engine: Engine, now: datetime, team: str | None = None) -> dict[str, int]:
    with read_session(engine) as session:
        return {c.status: c.count for c in kanban_columns(session, team=team, now=now)}


def assert_columns_are_the_plain_count(engine: Engine, now: datetime) -> None:
    for team in (None, "360", "Stats iQ"):
        assert column_counts(engine, now, team) == plain_counts(engine, team), team


def test_kanban_counts_follow_every_change(engine: Engine, zone: ZoneInfo) -> None:
    """Counted (and remembered) once, then tickets change: a pull, a resolution of a ticket
    created years ago, a reopening from months ago, a ticket created days ago escalated and
    moved to the other team; each read again is the plain count (without forgetting the
    changed buckets, the old counts would be shown)."""
    keys = kanban_desk(engine, zone)
    now = local(zone, NOW)
    for _ in range(3):  # PostgreSQL: kept once no transaction of the first read's runs
        assert_columns_are_the_plain_count(engine, now)
    before = column_counts(engine, now)
    assert pull(engine, "maya", "360") in keys
    with transaction(engine) as session:
        maya = get_user(session, "maya")
        for key, changes in [
            (keys[-4], {"status": "resolved"}),  # 2019: the far past
            (keys[-2], {"status": "resolved"}),  # June 2025: a month
            (keys[-1], {"status": "escalated"}),  # last month
            (keys[10], {"status": "escalated", "team": "Stats iQ"}),  # two days ago
        ]:
            update_ticket(session, actor=maya, key=key, comment="Changed", changes=changes)
    assert column_counts(engine, now) != before
    assert_columns_are_the_plain_count(engine, now)
    assert_columns_are_the_plain_count(engine, now)


def test_unchanged_only_today_is_counted(engine: Engine, zone: ZoneInfo) -> None:
    """Read again with nothing changed, the columns count today's tickets only (one
    statement over ``ticket``, from today's midnight); after a change to a ticket created
    years ago, its bucket is counted again, not the rest."""
    keys = kanban_desk(engine, zone)
    now = local(zone, NOW)

    def read() -> list[dict[str, object]]:
        return ticket_statements(engine, lambda s: kanban_columns(s, now=now))

    counted = read()
    for _ in range(100):  # PostgreSQL: kept once no transaction of the first read's runs
        if len(counted) == 1:
            break
        counted = read()
    assert len(counted) == 1, counted
    assert local(zone, (2026, 12, 1)) in counted[0].values(), counted
    with transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=keys[-4],
                      comment="Done", changes={"status": "resolved"})  # fmt: skip
    assert len(read()) == 3  # the changed ticket's created_at, its bucket, today
    assert_columns_are_the_plain_count(engine, now)


@pytest.mark.slow
def test_resolutions_from_another_process(engine: Engine, db_url: str) -> None:
    """Another process resolves tickets of every age while this one reads the columns
    again and again; once it is done, the columns are the plain count."""
    zone = ZoneInfo("UTC")
    keys = kanban_desk(engine, zone)
    now = local(zone, NOW)
    assert_columns_are_the_plain_count(engine, now)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_url, "resolved", *keys[::3]],
        stdout=subprocess.PIPE,
        text=True,
    )
    while writer.poll() is None:
        column_counts(engine, now)  # remembered while the writer commits
    assert writer.communicate()[0].strip() == "done"
    assert_columns_are_the_plain_count(engine, now)


def test_a_write_transaction_counts_its_own_changes(engine: Engine) -> None:
    """Inside a write transaction the columns count its uncommitted change (every ticket
    counted, nothing remembered); rolled back, a read counts as before."""
    zone = ZoneInfo("UTC")
    keys = kanban_desk(engine, zone)
    now = local(zone, NOW)
    before = column_counts(engine, now)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=keys[-4],
                      comment="Done", changes={"status": "resolved"})  # fmt: skip
        inside = {c.status: c.count for c in kanban_columns(session, now=now)}
        assert inside["resolved"] == before["resolved"] + 1
        raise RuntimeError("rolled back")
    assert column_counts(engine, now) == before == plain_counts(engine, None)
