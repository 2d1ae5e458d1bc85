"""Seeing the whole desk (issue 5): the ticket list's filter, sort and summary, saved views,
kanban columns, the stream, history, the board, and export to .csv/.xlsx, on SQLite and
PostgreSQL, through the store and through the ``cxdesk`` CLI.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, update
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError, NotFound, PermissionDenied
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.export import EXPORT_COLUMNS, export_tickets
from cxdesk.store.models import SavedView, Ticket, utcnow
from cxdesk.store.pages import (
    history_page,
    kanban_columns,
    kanban_page,
    stream_page,
)
from cxdesk.store.tickets import TicketDraft, create_ticket, update_ticket
from cxdesk.store.views import (
    LIST_COLUMNS,
    Sort,
    TicketFilter,
    get_view,
    list_views,
    save_view,
    ticket_page,
    ticket_summary,
)
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk

# -- a desk with known tickets -----------------------------------------------------------------


def make_ticket(
    engine: Engine,
    title: str,
    team: str,
    *,
    days_ago: int = 0,
    actor: str | None = None,
    **fields: object,
) -> str:
    """A ticket as a workflow would write it; ``days_ago`` moves its creation back."""
    with unit_of_work(engine) as session:
        who = get_user(session, actor) if actor else None
        ticket = create_ticket(
            session,
            actor=who,
            draft=TicketDraft(title=title, team=team, **fields),  # type: ignore[arg-type]
        )
        key = ticket.key
        if days_ago:
            when = utcnow() - timedelta(days=days_ago)
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id)
                .values(created_at=when, updated_at=when)  # type: ignore[arg-type]
            )
    assert key is not None
    return key


def build_ticket_desk(engine: Engine) -> dict[str, str]:
    """Five tickets of the last month and one older; names -> keys."""
    build_small_desk(engine)
    keys = {
        "ada": make_ticket(engine, "Printer broken", "360", priority="high",
                           customer_name="Ada Lovelace", customer_email="ada@example.com",
                           customer_comment="The printer is on fire", tags=["vip"]),
        "bob": make_ticket(engine, "Stats question", "Stats iQ", priority="low", owner="kenji",
                           status="open", customer_name="Bob Builder",
                           customer_email="bob@example.com"),
        "cy": make_ticket(engine, "Fixed thing", "360", priority="critical", status="resolved",
                          customer_name="Cy Twombly", customer_email="cy@example.com"),
        "dee": make_ticket(engine, "Escalated thing", "Solo", status="escalated",
                           customer_name="Dee Dee", customer_email="dee@example.com"),
        "eve": make_ticket(engine, "Parked", "360", status="Follow up later",
                           customer_name="Eve", customer_email="eve@example.com", owner="omar"),
        "old": make_ticket(engine, "Ancient history", "360", days_ago=45,
                           customer_name="Old Timer", customer_email="old@example.com"),
    }  # fmt: skip
    return keys


def keys_of(engine: Engine, flt: TicketFilter, sort: Sort = Sort(), **kw: int) -> list[str]:
    with read_session(engine) as session:
        return [row.key for row in ticket_page(session, flt, sort=sort, **kw)]


# -- the ticket list ---------------------------------------------------------------------------


def test_default_filter_is_last_month_newest_first(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    assert keys_of(engine, TicketFilter()) == [k["eve"], k["dee"], k["cy"], k["bob"], k["ada"]]
    everything = keys_of(engine, TicketFilter(last_days=None))
    assert everything[-1] == k["old"] and len(everything) == 6
    today = utcnow().astimezone().date()
    ranged = TicketFilter(last_days=None, created_from=today - timedelta(days=50),
                          created_to=today - timedelta(days=40))  # fmt: skip
    assert keys_of(engine, ranged) == [k["old"]]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"team": "360"}, ["eve", "cy", "ada"]),
        ({"owner": "kenji"}, ["bob"]),
        ({"owner": "none"}, ["dee", "cy", "ada"]),
        ({"status": "Follow up later"}, ["eve"]),
        ({"priority": "critical"}, ["cy"]),
        ({"tag": "vip"}, ["ada"]),
        ({"text": "ON FIRE"}, ["ada"]),  # the customer comment, case-insensitive
        ({"text": "bob@"}, ["bob"]),
        ({"text": "50%"}, []),  # % is a character, not a wildcard
        ({"team": "360", "priority": "high", "status": "new"}, ["ada"]),
    ],
)
def test_filters(engine: Engine, changes: dict[str, str], expected: list[str]) -> None:
    k = build_ticket_desk(engine)
    assert keys_of(engine, TicketFilter(**changes)) == [k[name] for name in expected]  # type: ignore[arg-type]


def test_summary_counts_by_status_for_the_filter(engine: Engine) -> None:
    build_ticket_desk(engine)
    with read_session(engine) as session:
        everything = ticket_summary(session, TicketFilter(last_days=None))
        team_360 = ticket_summary(session, TicketFilter(team="360"))
    # "Follow up later" is open-like: it counts as open. The old ticket is new.
    assert (everything.new, everything.open, everything.escalated, everything.resolved,
            everything.total) == (2, 2, 1, 1, 6)  # fmt: skip
    assert (team_360.new, team_360.open, team_360.resolved, team_360.total) == (1, 1, 1, 3)
    assert team_360.line() == "New 1 · Open 1 · Escalated 0 · Resolved 1 · Total 3"


def test_sort_by_any_column_and_pages(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    for number in range(6):  # eleven tickets this month: EXP-10 must sort after EXP-9
        make_ticket(engine, f"More {number}", "Stats iQ", customer_name=f"Zed {number}")
    month = TicketFilter()
    by_key = keys_of(engine, month, Sort("key", descending=False))
    assert [int(key.split("-")[1]) for key in by_key] == sorted(
        int(key.split("-")[1]) for key in by_key
    )
    assert keys_of(engine, month, Sort("priority", descending=False))[:2] == [k["cy"], k["ada"]]
    assert keys_of(engine, month, Sort("owner", descending=False))[:2] == [k["bob"], k["eve"]]
    customers = keys_of(engine, TicketFilter(team="360"), Sort("customer_name", False))
    assert customers == [k["ada"], k["cy"], k["eve"]]
    assert keys_of(engine, month, Sort("team", descending=True))[0] in {k["bob"]} | {
        key for key in by_key if key not in k.values()
    }
    first, second = (keys_of(engine, month, offset=o, limit=4) for o in (0, 4))
    assert len(first) == 4 and len(second) == 4 and not set(first) & set(second)
    with pytest.raises(DeskError, match="Cannot sort by 'nope'"):
        Sort("nope")
    for column in LIST_COLUMNS:  # every column sorts, both ways, on both databases
        assert len(keys_of(engine, month, Sort(column, True))) == 11


def test_unknown_filter_values_are_refused(engine: Engine) -> None:
    build_ticket_desk(engine)
    with read_session(engine) as session:
        for flt, message in [
            (TicketFilter(team="Nope"), "Nope"),
            (TicketFilter(owner="ghost"), "ghost"),
            (TicketFilter(status="limbo"), "limbo"),
            (TicketFilter(priority="urgent"), "priority"),
        ]:
            with pytest.raises(DeskError, match=message):
                ticket_page(session, flt)


# -- saved views -------------------------------------------------------------------------------


def test_saved_view_round_trip(engine: Engine) -> None:
    build_ticket_desk(engine)
    today = utcnow().date()
    flt = TicketFilter(last_days=None, created_from=today, team="360", priority="high", tag="vip")
    with transaction(engine) as session:
        maya = get_user(session, "maya")
        save_view(session, actor=maya, name="  Hot  360 ", flt=flt)
        save_view(session, actor=get_user(session, "omar"), name="Hot 360", flt=TicketFilter())
    with read_session(engine) as session:
        maya = get_user(session, "maya")
        assert get_view(session, actor=maya, name="Hot 360") == flt
        assert [v.name for v in list_views(session, actor=maya)] == ["Hot 360"]
    with transaction(engine) as session:  # saving the name again replaces the filter
        save_view(session, actor=get_user(session, "maya"), name="Hot 360", flt=TicketFilter())
    with read_session(engine) as session:
        assert get_view(session, actor=get_user(session, "maya"), name="Hot 360") == TicketFilter()
        assert len(session.exec(select(SavedView)).all()) == 2
        with pytest.raises(NotFound, match="No saved view named 'Cold'"):
            get_view(session, actor=get_user(session, "maya"), name="Cold")
    with pytest.raises(DeskError, match="Nope"), transaction(engine) as session:
        save_view(
            session, actor=get_user(session, "maya"), name="Bad", flt=TicketFilter(team="Nope")
        )


# -- kanban, stream, history, board -------------------------------------------------------------


def test_kanban_columns_and_pages(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    with read_session(engine) as session:
        columns = kanban_columns(session)
        assert [(c.status, c.count) for c in columns] == [
            ("new", 2), ("open", 1), ("escalated", 1), ("resolved", 1), ("Follow up later", 1)
        ]  # fmt: skip
        assert [c.status for c in kanban_columns(session, team="360")] == [
            c.status for c in columns
        ]
        assert [c.key for c in kanban_page(session, "new")] == [k["ada"], k["old"]]  # high first
        assert [c.key for c in kanban_page(session, "new", offset=1, limit=1)] == [k["old"]]
        card = kanban_page(session, "open")[0]
        assert (card.key, card.owner, card.customer_name) == (k["bob"], "kenji", "Bob Builder")


def test_stream_newest_first_with_filters(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    with unit_of_work(engine) as session:
        update_ticket(session, actor=get_user(session, "kenji"), key=k["bob"],
                      comment="done", changes={"status": "resolved"})  # fmt: skip
    with read_session(engine) as session:
        events = stream_page(session, limit=3)
        assert [e.kind for e in events] == ["ticket.commented", "ticket.status_changed",
                                            "ticket.created"]  # fmt: skip
        assert events[1].ticket_key == k["bob"] and events[1].actor == "kenji"
        assert events[1].to_value == "resolved" and events[1].team == "Stats iQ"
        older = stream_page(session, before_id=events[-1].id, limit=100)
        assert all(e.id < events[-1].id for e in older) and older
        assert {e.team for e in stream_page(session, team="360")} == {"360"}
        kinds = {e.kind for e in stream_page(session, kind="ticket.status_changed")}
        assert kinds == {"ticket.status_changed"}
        assert stream_page(session, kind="ticket.feedback") == []  # a kind not written yet
        with pytest.raises(NotFound, match=r"'ticket.stauts'; kinds: .*ticket.status_changed"):
            stream_page(session, kind="ticket.stauts")
        assert stream_page(session, after_id=events[0].id) == []


def test_history_mine_and_organisation(engine: Engine) -> None:
    k = build_ticket_desk(engine)
    mine = make_ticket(engine, "Mine", "360", actor="maya", customer_name="Ann Other")
    with read_session(engine) as session:
        omar, admin = get_user(session, "omar"), get_user(session, "admin")
        assert [r.key for r in history_page(session, actor=omar)] == [k["eve"]]
        rows = history_page(session, actor=admin, organisation=True)
        assert len(rows) == 7 and rows[0].key == mine
        oldest = history_page(session, actor=admin, organisation=True, newest_first=False)
        assert oldest[0].key == k["old"]
        with pytest.raises(PermissionDenied):
            history_page(session, actor=omar, organisation=True)


# -- export ------------------------------------------------------------------------------------


def test_export_store_writes_nothing_on_a_bad_filter(engine: Engine, tmp_path: Path) -> None:
    build_ticket_desk(engine)
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(DeskError, match="Nope"):
        export_tickets(engine, TicketFilter(team="Nope"), folder / "out.xlsx")
    with pytest.raises(DeskError, match="csv or xlsx"):
        export_tickets(engine, TicketFilter(), folder / "out.pdf")
    with pytest.raises(DeskError, match="does not exist"):
        export_tickets(engine, TicketFilter(), folder / "missing" / "out.csv")
    assert list(folder.iterdir()) == []


# -- the CLI -----------------------------------------------------------------------------------


def test_cli_export_xlsx_and_csv(engine: Engine, cli: Cli, tmp_path: Path) -> None:
    k = build_ticket_desk(engine)
    xlsx = tmp_path / "hot.xlsx"
    result = cli("tickets", "export", "--format", "xlsx", "--output", str(xlsx),
                 "--team", "360", "--status", "new", "--priority", "high")  # fmt: skip
    assert result.exit_code == 0, str(result)
    assert "1 ticket written" in result.stdout
    sheet = openpyxl.load_workbook(xlsx).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == tuple(EXPORT_COLUMNS.values())
    assert len(rows) == 2
    record = dict(zip(EXPORT_COLUMNS, rows[1], strict=True))
    assert record["key"] == k["ada"] and record["customer_email"] == "ada@example.com"
    assert record["origin_team"] == "360" and record["priority"] == "high"
    assert isinstance(record["created_at"], datetime)  # a typed date cell, not text
    with read_session(engine) as session:
        created = session.exec(select(Ticket.created_at).where(Ticket.key == k["ada"])).one()
    local = created.astimezone().replace(tzinfo=None)
    assert abs(record["created_at"] - local) < timedelta(seconds=1)

    out = tmp_path / "all.csv"
    result = cli("tickets", "export", "--output", str(out), "--days", "0", "--sort", "key",
                 "--ascending")  # fmt: skip
    assert result.exit_code == 0, str(result)
    with out.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(EXPORT_COLUMNS.values())
    assert lines[0] == [  # by position, as scripts read it: not the screen's order
        "Key", "Response", "Customer", "Customer email", "Origin team", "Team", "Owner",
        "Priority", "Status", "Reported on", "Customer comment", "SLA state", "SLA due",
    ]  # fmt: skip
    assert [line[0] for line in lines[1:]] == sorted(k.values(), key=lambda v: int(v[4:]))
    assert datetime.fromisoformat(lines[1][list(EXPORT_COLUMNS).index("created_at")]).tzinfo
    assert "The printer is on fire" in lines[1]


def test_cli_saved_views(engine: Engine, cli: Cli, tmp_path: Path) -> None:
    k = build_ticket_desk(engine)
    result = cli("view", "save", "Hot 360", "--as", "maya", "--team", "360", "--priority", "high")
    assert result.exit_code == 0, str(result)
    assert "team 360, priority high" in result.stdout
    listed = cli("view", "list", "--as", "maya")
    assert "Hot 360" in listed.stdout and "last 30 days, team 360" in listed.stdout
    shown = cli("view", "show", "Hot 360", "--as", "maya")
    assert "New 1 · Open 0 · Escalated 0 · Resolved 0 · Total 1" in shown.stdout
    out = tmp_path / "v.csv"
    result = cli("tickets", "export", "-o", str(out), "--view", "Hot 360", "--as", "maya")
    assert result.exit_code == 0, str(result)
    assert out.read_text(encoding="utf-8-sig").count(k["ada"]) == 1
    assert cli("view", "delete", "Hot 360", "--as", "maya").exit_code == 0
    assert_one_error_line(cli("view", "show", "Hot 360", "--as", "maya"), "No saved view")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--team", "Nope"], "Nope"),
        (["--status", "limbo"], "limbo"),
        (["--priority", "urgent"], "priority"),
        (["--owner", "ghost"], "ghost"),
        (["--from", "23/11/2026"], "--from"),
        (["--days", "-3"], "--days"),
        (["--sort", "colour"], "colour"),
        (["--format", "pdf"], "--format"),
        (["--view", "Hot"], "No saved view"),
    ],
)
def test_cli_bad_filter_is_one_line_and_writes_nothing(
    engine: Engine, cli: Cli, tmp_path: Path, args: list[str], fragment: str
) -> None:
    build_ticket_desk(engine)
    before = table_counts(engine)
    folder = tmp_path / "exports"
    folder.mkdir()
    assert_one_error_line(cli("tickets", "export", "-o", str(folder / "out.xlsx"), *args), fragment)
    assert list(folder.iterdir()) == []
    if args[0] not in ("--sort", "--format", "--view"):  # options of the export only
        assert_one_error_line(cli("view", "save", "X", "--as", "maya", *args), fragment)
    assert table_counts(engine) == before
