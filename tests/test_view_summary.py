"""The ticket list's summary line (``store.views.ticket_summary``) counted from the status
index: its figures equal the list's own rows counted by status, for every kind of filter,
before and after tickets change status (a pull, an update, a reopening, a status the desk
adds later), at the ends of the date range in the local time zone (midnight, the month's last
instant, a half-hour offset, the night daylight saving ends), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, update
from sqlmodel import Session, col

from cxdesk.store import day_counts
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import add_status, get_user, list_statuses
from cxdesk.store.models import StatusCategory, Ticket
from cxdesk.store.tickets import update_ticket
from cxdesk.store.views import (
    Summary,
    TicketFilter,
    iter_tickets,
    ticket_summary,
)
from tests.desk import build_small_desk, pull
from tests.statement_helpers import statements_of
from tests.test_views import make_ticket

ZONES = ("Asia/Kolkata", "America/Los_Angeles")
"""A half-hour offset, and a zone whose 1 November 2026 (the range's first day) is 25 hours
long (daylight saving ends at 02:00)."""
NOW = (2026, 12, 1, 10, 0)
"""The list's clock, local: "the last 30 days" start at local midnight on 1 November."""
PLACED: list[tuple[tuple[int, ...], int, str]] = [
    ((2026, 10, 31, 23, 59, 59, 999999), 0, "resolved"),  # just before the 30 days
    ((2026, 11, 1, 0, 0), 0, "new"),  # their first instant
    ((2026, 11, 1, 1, 30), 0, "open"),  # Los Angeles: 01:30 comes twice that night
    ((2026, 11, 1, 1, 30), 1, "escalated"),
    ((2026, 11, 15, 12, 0), 0, "Follow up later"),
    ((2026, 11, 30, 23, 59, 59, 999999), 0, "closed"),  # November's last instant
    ((2026, 12, 1, 0, 0), 0, "new"),  # December's first
    ((2026, 12, 2, 9, 0), 0, "open"),  # after the clock (a ticket dated ahead): still listed
]
"""Tickets at local times (``fold`` 1: the second 01:30), with their status."""


@pytest.fixture(params=ZONES)
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ZoneInfo]:
    """The process's local time zone, which the list's dates are read in."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield ZoneInfo(request.param)
    monkeypatch.undo()
    time.tzset()


def local(zone: ZoneInfo, parts: tuple[int, ...], fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def placed_desk(engine: Engine, zone: ZoneInfo) -> list[str]:
    """The small desk with a paused and a second resolved status, and ``PLACED``'s tickets
    (in 360 and Stats iQ, some high priority), then eight more of every status a day apart
    before the clock; their keys."""
    build_small_desk(engine)
    with transaction(engine) as session:
        add_status(session, actor=None, name="Waiting on customer", category="paused")
        add_status(session, actor=None, name="Done elsewhere", category="resolved")
    statuses = ["new", "open", "escalated", "resolved", "closed", "Follow up later",
                "Waiting on customer", "Done elsewhere"]  # fmt: skip
    placed = [(local(zone, parts, fold), status) for parts, fold, status in PLACED]
    placed += [
        (local(zone, NOW) - timedelta(days=number), status)
        for number, status in enumerate(statuses, start=1)
    ]
    keys = []
    for number, (when, status) in enumerate(placed):
        key = make_ticket(engine, f"Placed {number}", ("360", "Stats iQ")[number % 2],
                          priority=("high", "low", "medium")[number % 3])  # fmt: skip
        with transaction(engine) as session:
            session.execute(
                update(Ticket).where(col(Ticket.key) == key)
                .values(created_at=when, updated_at=when, status=status)
            )  # fmt: skip
        keys.append(key)
    return keys


def counted_rows(session: Session, flt: TicketFilter, now: datetime) -> Summary:
    """The summary the naive way: every row the list shows for ``flt``, counted by status."""
    resolved = {s.name for s in list_statuses(session) if s.category == StatusCategory.resolved}
    counts: Counter[str] = Counter()
    for batch in iter_tickets(session, flt, now=now):
        for row in batch:
            if row.status in ("new", "escalated"):
                counts[row.status] += 1
            else:
                counts["resolved" if row.status in resolved else "open"] += 1
    return Summary(new=counts["new"], open=counts["open"], escalated=counts["escalated"],
                   resolved=counts["resolved"], total=counts.total())  # fmt: skip


NOVEMBER = TicketFilter(
    last_days=None, created_from=date(2026, 11, 1), created_to=date(2026, 11, 30)
)
FILTERS = [
    TicketFilter(),
    TicketFilter(last_days=1),
    TicketFilter(last_days=400),
    TicketFilter(last_days=None),
    NOVEMBER,
    TicketFilter(last_days=None, created_from=date(2026, 11, 1), created_to=date(2026, 11, 1)),
    TicketFilter(last_days=None, created_to=date(2026, 10, 31)),
    TicketFilter(last_days=None, created_from=date(2026, 12, 1)),
    TicketFilter(status="new"),
    TicketFilter(status="Waiting on customer", last_days=None),
    TicketFilter(status="Done elsewhere", last_days=None),
    TicketFilter(team="360"),
    TicketFilter(owner="none", last_days=None),
    TicketFilter(priority="high"),
    TicketFilter(text="Placed 1"),
]


def assert_summaries_are_the_rows_counted(engine: Engine, now: datetime) -> None:
    with read_session(engine) as session:
        for flt in FILTERS:
            assert ticket_summary(session, flt, now=now) == counted_rows(session, flt, now), flt


def test_the_summary_counts_what_the_list_shows(engine: Engine, zone: ZoneInfo) -> None:
    placed_desk(engine, zone)
    now = local(zone, NOW)
    with read_session(engine) as session:
        month = ticket_summary(session, TicketFilter(), now=now)
        november = ticket_summary(session, NOVEMBER, now=now)
    # The last 30 days: from 1 November 00:00 local on, the ticket dated ahead included, the
    # one a microsecond before left out; eight more, a day apart, before the clock. Paused is
    # open-like; a second resolved status counts as resolved.
    assert month == Summary(new=3, open=6, escalated=2, resolved=4, total=15)
    assert november == Summary(new=2, open=5, escalated=2, resolved=4, total=13)
    assert_summaries_are_the_rows_counted(engine, now)


def test_the_summary_follows_status_changes(engine: Engine, zone: ZoneInfo) -> None:
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    before = ticket_summary_now(engine, now)
    pulled = pull(engine, "maya", "360")  # the oldest waiting ticket of 360: new -> open
    assert pulled in keys
    with transaction(engine) as session:
        maya = get_user(session, "maya")
        update_ticket(session, actor=maya, key=keys[1], comment="Done",
                      changes={"status": "resolved"})  # fmt: skip
        # An old ticket reopened (out of the month), one moved to a status added now.
        update_ticket(session, actor=maya, key=keys[0], comment="Back again",
                      changes={"status": "open"})  # fmt: skip
        add_status(session, actor=None, name="Sent to the lab", category="open")
        update_ticket(session, actor=maya, key=keys[5], comment="To the lab",
                      changes={"status": "Sent to the lab"})  # fmt: skip
    after = ticket_summary_now(engine, now)
    assert after != before
    assert after.total == before.total
    assert_summaries_are_the_rows_counted(engine, now)


def ticket_summary_now(engine: Engine, now: datetime) -> Summary:
    with read_session(engine) as session:
        return ticket_summary(session, TicketFilter(), now=now)


def test_remembered_days_are_counted_again_when_their_tickets_change(
    engine: Engine, zone: ZoneInfo
) -> None:
    """Every filter read once (its days remembered), then tickets of those days change: by
    a pull, a resolution, a reopening, a status added now, a team and a priority change; each
    summary read again is the rows counted (without forgetting the changed days, the old
    counts would be shown)."""
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    assert_summaries_are_the_rows_counted(engine, now)
    before = ticket_summary_now(engine, now)
    assert pull(engine, "maya", "360") in keys
    with transaction(engine) as session:
        maya = get_user(session, "maya")
        for key, changes in [
            (keys[4], {"status": "resolved"}),
            (keys[9], {"status": "escalated"}),
            (keys[10], {"team": "Stats iQ", "priority": "high"}),
        ]:
            update_ticket(session, actor=maya, key=key, comment="Changed", changes=changes)
        add_status(session, actor=None, name="Sent to the lab", category="open")
        update_ticket(session, actor=maya, key=keys[12], comment="To the lab",
                      changes={"status": "Sent to the lab"})  # fmt: skip
    assert_summaries_are_the_rows_counted(engine, now)
    assert ticket_summary_now(engine, now) != before


def test_a_past_day_is_read_once_until_it_changes(engine: Engine, zone: ZoneInfo) -> None:
    """Read again with nothing changed, the summary counts today's tickets only (one
    statement over ``ticket``, from today's midnight); after a change, only the changed
    ticket's day is counted again."""
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    ticket_summary_now(engine, now)
    counted = ticket_statements(engine, lambda s: ticket_summary(s, TicketFilter(), now=now))
    for _ in range(100):  # PostgreSQL: kept once no transaction of the first read's runs
        if len(counted) == 1:
            break
        counted = ticket_statements(engine, lambda s: ticket_summary(s, TicketFilter(), now=now))
    assert len(counted) == 1, counted
    (params,) = counted
    assert local(zone, (2026, 12, 1)) in params.values(), params
    with transaction(engine) as session:
        update_ticket(session, actor=get_user(session, "maya"), key=keys[10],
                      comment="Done", changes={"status": "resolved"})  # fmt: skip
    counted = ticket_statements(engine, lambda s: ticket_summary(s, TicketFilter(), now=now))
    assert len(counted) == 3, counted  # the changed ticket's day, its created_at, today


def ticket_statements(engine: Engine, read: Any) -> list[dict[str, Any]]:
    """The parameters of each statement reading ``ticket`` that ``read`` runs."""
    _result, statements = statements_of(engine, read)
    run = [
        dict(params) if isinstance(params, dict) else dict(enumerate(params))
        for text, params in statements
        if "FROM ticket" in text
    ]
    for params in run:
        for name, value in params.items():
            if isinstance(value, str) and value[:4].isdigit():  # SQLite's stored datetimes
                params[name] = datetime.fromisoformat(value).replace(tzinfo=UTC)
            elif isinstance(value, datetime) and value.tzinfo is None:
                params[name] = value.replace(tzinfo=UTC)
    return run


def test_few_days_and_filters_kept_still_count_right(
    engine: Engine, zone: ZoneInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two days and two filters only, every filter's summary (each reading
    more days than are kept, the oldest dropped first) is still the rows counted, twice."""
    monkeypatch.setattr(day_counts, "DAYS_KEPT", 2)
    monkeypatch.setattr(day_counts, "FILTERS_KEPT", 2)
    placed_desk(engine, zone)
    now = local(zone, NOW)
    assert_summaries_are_the_rows_counted(engine, now)
    assert_summaries_are_the_rows_counted(engine, now)


def test_after_many_changes_the_log_is_not_read_whole(
    engine: Engine, zone: ZoneInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than ``MAX_CHANGES`` events since the days were counted: the log is read up to
    one more than that (then every day is counted again), never all of it."""
    monkeypatch.setattr(day_counts, "MAX_CHANGES", 3)
    keys = placed_desk(engine, zone)
    now = local(zone, NOW)
    for _ in range(3):  # PostgreSQL: kept once no transaction of the first read's runs
        ticket_summary_now(engine, now)
    with transaction(engine) as session:
        maya = get_user(session, "maya")
        for key in keys[:8]:
            update_ticket(session, actor=maya, key=key, comment="Moved",
                          changes={"status": "escalated"})  # fmt: skip
    read: list[str] = []

    def listen(*args: Any) -> None:
        if "FROM event" in args[2] and "kind" in args[2]:
            read.append(args[2])

    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert_summaries_are_the_rows_counted(engine, now)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert read and all("LIMIT" in statement for statement in read), read
