"""Pages read from either end (``store.views.PageRead``) and "my tickets" from its own indexes:
every page equals the same slice of the whole ordered list, ties in the sort key and empty
values included, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlmodel import col

from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Ticket, utcnow
from cxdesk.store.pages import history_page, kanban_columns, kanban_page
from cxdesk.store.views import LIST_COLUMNS, PageRead, Sort, TicketFilter, ticket_page
from tests.desk import build_small_desk
from tests.test_views import make_ticket

PAGE = 4


OWNERS = {"360": (None, "omar", "maya"), "Stats iQ": (None, "kenji", "maya"),
          "Solo": (None, "kenji", "kenji")}  # fmt: skip
"""Who may own a ticket of each team (``tests.desk``), the first one nobody."""


def build_tied_desk(engine: Engine) -> list[str]:
    """Fourteen new or open tickets in three teams, owned by nobody, omar, kenji or maya,
    some submitted by maya (some of those hers too), whose creation times (in threes),
    customers and priorities repeat."""
    build_small_desk(engine)
    keys = []
    for number in range(14):
        team = ("360", "Stats iQ", "Solo")[number % 3]
        owner = OWNERS[team][number % 5 % 3]
        keys.append(
            make_ticket(
                engine,
                f"Ticket {number}",
                team,
                actor="maya" if number % 4 == 0 else None,
                owner=owner,
                status="open" if owner else "new",
                priority=("low", "high")[number % 2],
                customer_name=f"Customer {number % 3}",
            )
        )
    moment = utcnow() - timedelta(hours=1)
    with transaction(engine) as session:
        for number, key in enumerate(keys):
            when = moment - timedelta(minutes=number // 3)
            session.execute(update(Ticket).where(col(Ticket.key) == key).values(created_at=when))
    return keys


def test_page_read_counts_from_the_nearer_end() -> None:
    assert PageRead.of(0, 10, 100) == PageRead(False, 0, 10)
    assert PageRead.of(45, 10, 100) == PageRead(False, 45, 10)
    assert PageRead.of(90, 10, 100) == PageRead(True, 0, 10)
    assert PageRead.of(95, 10, 100) == PageRead(True, 0, 5)  # a short last page
    assert PageRead.of(120, 10, 100) == PageRead(True, 0, 0)  # past the end: nothing
    assert PageRead.of(90, 10, None) == PageRead(False, 90, 10)  # no total: OFFSET
    assert PageRead.of(-5, 10, 100) == PageRead(False, 0, 10)


def test_list_pages_from_either_end_are_the_slices_of_the_list(engine: Engine) -> None:
    build_tied_desk(engine)
    everything = TicketFilter(last_days=None)
    with read_session(engine) as session:
        for column in LIST_COLUMNS:
            for descending in (True, False):
                sort = Sort(column, descending=descending)
                whole = [r.key for r in ticket_page(session, everything, sort=sort, limit=100)]
                total = len(whole)
                assert total == 14
                for offset in range(total + 2):
                    page = ticket_page(session, everything, sort=sort, offset=offset,
                                       limit=PAGE, total=total)  # fmt: skip
                    assert [r.key for r in page] == whole[offset : offset + PAGE], (
                        column, descending, offset
                    )  # fmt: skip


def test_kanban_pages_from_either_end_are_the_slices_of_the_column(engine: Engine) -> None:
    build_tied_desk(engine)
    with read_session(engine) as session:
        column = next(c for c in kanban_columns(session) if c.status == "open")
        whole = [c.key for c in kanban_page(session, "open", limit=100)]
        assert len(whole) == column.count > PAGE
        for offset in range(column.count + 1):
            page = kanban_page(session, "open", offset=offset, limit=PAGE, total=column.count)
            assert [c.key for c in page] == whole[offset : offset + PAGE], offset


def test_my_tickets_pages_are_the_slices_of_what_i_submitted_or_own(engine: Engine) -> None:
    build_tied_desk(engine)
    with read_session(engine) as session:
        for username in ("maya", "omar", "kenji"):
            actor = get_user(session, username)
            mine = session.execute(
                select(col(Ticket.key), col(Ticket.created_at), col(Ticket.id)).where(
                    (col(Ticket.owner_id) == actor.id) | (col(Ticket.requester_id) == actor.id)
                )
            ).all()
            newest = [key for key, *_ in sorted(mine, key=lambda r: (r[1], r[2]), reverse=True)]
            assert newest, username
            for newest_first, whole in ((True, newest), (False, newest[::-1])):
                for offset in range(len(whole) + 1):
                    page = history_page(session, actor=actor, newest_first=newest_first,
                                        offset=offset, limit=PAGE)  # fmt: skip
                    assert [r.key for r in page] == whole[offset : offset + PAGE], (
                        username, newest_first, offset
                    )  # fmt: skip
