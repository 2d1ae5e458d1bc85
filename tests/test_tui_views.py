"""The desk-wide screens driven by keys (App.run_test + Pilot): the ticket list (filter, sort,
open, export), the kanban (a move is a real status change with its event), the stream (live,
filtered), history (mine, the organisation's) and the hall board (walk-ins; a pull calls the
customer), on SQLite and PostgreSQL.

The app gets its own engine on the test's database (as another terminal would) and every
statement it runs is checked: none may run on the event loop's thread. Workers are waited for
by polling a condition, never by fixed sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList

from cxdesk.app import CxDeskApp, create_app
from cxdesk.demo import DEMO_PASSWORD, build_demo
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.base import DeskChanged
from cxdesk.screens.board import BoardApp, BoardScreen
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.kanban import KanbanScreen, MoveDialog
from cxdesk.screens.stream import StreamScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Comment, Event, Team, Ticket
from cxdesk.store.pages import history_page
from cxdesk.store.tickets import TicketDraft, create_ticket, update_ticket
from cxdesk.store.views import LIST_COLUMNS
from cxdesk.widgets.prompt_dialog import PromptDialog
from tests import tui_helpers
from tests.desk import build_small_desk, pull
from tests.test_hall_board import walk_in
from tests.test_views import build_ticket_desk
from tests.tui_helpers import AnyApp, log_in, notified, palette, wait_until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # nothing here sends mail or SMS


def run_app(
    engine: Engine,
    build: Callable[[Engine], AnyApp],
    script: Callable[[Any, Pilot[Any]], Awaitable[None]],
) -> None:
    """``tests.tui_helpers.run_app`` in this module's wide terminal."""
    tui_helpers.run_app(engine, build, script, size=SIZE)


def desk(user: str) -> Callable[[Engine], AnyApp]:
    return lambda engine: create_app(engine, user=user, poll_seconds=0.2)


def table_keys(app: AnyApp, selector: str) -> list[str]:
    table = app.screen.query_one(selector, DataTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


async def open_list(app: CxDeskApp, pilot: Pilot[Any]) -> TicketsScreen:
    await log_in(app, pilot)
    screen = TicketsScreen()
    app.push_screen(screen)
    await wait_until(pilot, lambda: screen.page is not None, "the first page")
    return screen


# -- the ticket list ---------------------------------------------------------------------------


def test_list_filter_sort_and_open(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        month = [k["eve"], k["dee"], k["cy"], k["bob"], k["ada"]]
        assert table_keys(app, "#tickets") == month  # last month, newest first
        summary = "New 1 · Open 2 · Escalated 1 · Resolved 1 · Total 5"
        assert summary in str(screen.query_one("#summary").render())
        # Filter: high-priority new tickets of team 360, typed in the filter bar.
        screen.query_one("#f-team", Input).focus()
        await pilot.press(*"360", "tab", "tab", *"new", "tab", *"high", "enter")
        await wait_until(pilot, lambda: table_keys(app, "#tickets") == [k["ada"]], "filtered")
        assert "Total 1" in str(screen.query_one("#summary").render())
        assert app.focused is screen.query_one("#tickets")
        # Clear the status and priority; sort by the Priority column (s), then the other way.
        for name in ("status", "priority"):
            screen.query_one(f"#f-{name}", Input).value = ""
        screen.apply_filter()
        await wait_until(pilot, lambda: len(table_keys(app, "#tickets")) == 3, "team 360")
        table = screen.query_one("#tickets", DataTable)
        table.focus()
        table.move_cursor(row=0, column=list(LIST_COLUMNS).index("priority"))
        await pilot.press("s")
        await wait_until(pilot, lambda: table_keys(app, "#tickets")[0] == k["cy"], "critical")
        assert table_keys(app, "#tickets") == [k["cy"], k["ada"], k["eve"]]
        await pilot.press("s")
        await wait_until(pilot, lambda: table_keys(app, "#tickets")[0] == k["eve"], "reversed")
        # Enter opens the ticket under the cursor.
        table.move_cursor(row=2)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        assert isinstance(app.screen, TicketScreen) and app.screen.key == k["cy"]

    run_app(engine, desk("admin"), script)


def test_list_bad_filter_is_one_notification(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        screen.query_one("#f-team", Input).focus()
        await pilot.press(*"Nope", "enter")
        await wait_until(pilot, lambda: notified(app, "Nope"), "the refusal")
        assert screen.flt.team is None  # the list still shows the last good filter
        assert len(table_keys(app, "#tickets")) == len(k) - 1

    run_app(engine, desk("admin"), script)


def test_list_export_to_xlsx(engine: Engine, tmp_path: Path) -> None:
    k = build_ticket_desk(engine)
    target = tmp_path / "hot.xlsx"

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        screen.query_one("#f-priority", Input).focus()
        await pilot.press(*"high", "enter")
        await wait_until(pilot, lambda: screen.flt.priority == "high", "the filter")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the dialog")
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, target.exists, "the export")

    run_app(engine, desk("admin"), script)
    sheet = openpyxl.load_workbook(target).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert [row[0] for row in rows[1:]] == [k["ada"]]


# -- the kanban --------------------------------------------------------------------------------


def test_kanban_move_is_a_status_change_with_its_event(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = KanbanScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: len(screen.query(OptionList)) == 5, "the columns")
        await wait_until(pilot, lambda: screen.highlighted_card() is not None, "a card")
        assert screen.highlighted_card() == (0, k["ada"])  # new: high priority first
        await pilot.press("down")
        assert screen.highlighted_card() == (0, k["old"])
        await pilot.press("right")  # to the "open" column
        assert screen.highlighted_card() == (1, k["bob"])
        await pilot.press("left")  # back, on the same row as in the column left
        assert screen.highlighted_card() == (0, k["ada"])
        await pilot.press("shift+right")
        await wait_until(pilot, lambda: isinstance(app.screen, MoveDialog), "the dialog")
        comment = app.screen.query_one("#comment", Input).value
        assert comment == "Moved from new to open on the kanban"
        await pilot.press(*" (customer here)", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")
        await wait_until(pilot, lambda: screen.highlighted_card() == (1, k["ada"]), "the move")
        titles = [str(screen.query_one(f"#title-{i}").render()) for i in range(2)]
        assert titles == ["New (1)", "Open (2)"]

    run_app(engine, desk("maya"), script)
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == k["ada"])).one()
        assert ticket.status == "open"
        changed = session.exec(
            select(Event).where(Event.ticket_id == ticket.id, Event.kind == "ticket.status_changed")
        ).one()
        assert (changed.from_value, changed.to_value) == ("new", "open")
        assert changed.dispatched_at is not None  # workflows were given the event
        comments = session.exec(
            select(Comment.body).where(Comment.ticket_id == ticket.id).order_by(col(Comment.id))
        ).all()
        assert comments[-1] == "Moved from new to open on the kanban (customer here)"


def test_kanban_move_refused_keeps_the_card(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = KanbanScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.highlighted_card() is not None, "a card")
        await pilot.press("right", "shift+left")  # bob's ticket is Stats iQ: omar is not on it
        await wait_until(pilot, lambda: isinstance(app.screen, MoveDialog), "the dialog")
        await pilot.press("enter")
        error = "#dialog-error"
        await wait_until(
            pilot, lambda: "not on the team" in str(app.screen.query_one(error).render()), "refusal"
        )
        await pilot.press("escape")

    run_app(engine, desk("omar"), script)
    with read_session(engine) as session:
        assert session.exec(select(Ticket.status).where(Ticket.key == k["bob"])).one() == "open"


def test_kanban_move_over_a_change_made_since_the_board_was_read_is_refused(
    engine: Engine,
) -> None:
    k = build_ticket_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = KanbanScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.highlighted_card() == (0, k["ada"]), "ada's card")
        await pilot.press("shift+right")
        await wait_until(pilot, lambda: isinstance(app.screen, MoveDialog), "the dialog")
        with unit_of_work(engine) as session:  # omar, at another terminal, meanwhile
            update_ticket(session, actor=get_user(session, "omar"), key=k["ada"],
                          comment="urgent", changes={"priority": "critical"})  # fmt: skip
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                "Omar changed priority to critical"
                in str(app.screen.query_one("#dialog-error").render())
            ),
            "the refusal naming omar's change",
        )
        await pilot.press("escape")

    run_app(engine, desk("maya"), script)
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == k["ada"])).one()
        assert (ticket.status, ticket.priority) == ("new", "critical")


# -- the stream and history -------------------------------------------------------------------


def test_stream_is_live_and_filtered(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    def first_row(app: CxDeskApp) -> list[str]:
        table = app.screen.query_one("#stream", DataTable)
        return [str(v) for v in table.get_row_at(0)] if table.row_count else []

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = StreamScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.read is not None, "the stream")
        assert first_row(app)[1:5] == [k["old"], "360", "system", "Created"]  # kinds labelled
        with unit_of_work(engine) as session:  # another terminal resolves a ticket
            update_ticket(session, actor=get_user(session, "kenji"), key=k["bob"],
                          comment="done", changes={"status": "resolved"})  # fmt: skip
        await wait_until(pilot, lambda: first_row(app)[4] == "Comment", "live event")
        kind = screen.query_one("#s-kind", Input)
        kind.focus()
        await pilot.press(*"ticket.sta")
        await pilot.pause()  # the kind is suggested from the desk's kinds; right takes it
        await pilot.press("right")
        assert kind.value == "ticket.status_changed"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.flt.kind == "ticket.status_changed", "filter")
        assert first_row(app)[1:7] == [k["bob"], "Stats iQ", "kenji", "Status changed",
                                       "Open", "Resolved"]  # fmt: skip
        assert app.screen.query_one("#stream", DataTable).row_count == 1
        kind.value = "ticket.stauts_changed"  # a typo: named, and the page stays as it was
        kind.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "'ticket.stauts_changed'"), "refusal")
        assert screen.flt.kind == "ticket.status_changed"
        assert app.screen.query_one("#stream", DataTable).row_count == 1
        kind.value = ""
        screen.query_one("#s-team", Input).value = "Nope"
        screen.query_one("#s-team", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "Nope"), "refusal")
        assert screen.flt.team is None

    run_app(engine, desk("admin"), script)


def test_history_reload_keeps_the_page_asked_for(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk changes (another terminal) while the organisation's page is being read: the
    reload reads the page asked for, not the one still shown. Reads are slowed so that the
    organisation's is still on the way when the desk changes, and a reload of "my tickets"
    (the wrong page) would land last."""
    build_ticket_desk(engine)
    pressed = False

    def slow_history_page(session: Any, **kwargs: Any) -> Any:
        if kwargs["organisation"]:
            time.sleep(0.5)
        elif pressed:
            time.sleep(1.0)
        return history_page(session, **kwargs)

    monkeypatch.setattr("cxdesk.screens.history.history_page", slow_history_page)

    async def as_admin(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = HistoryScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.read is not None, "history")
        nonlocal pressed
        pressed = True
        await pilot.press("o")
        screen.post_message(DeskChanged())
        await wait_until(pilot, lambda: len(table_keys(app, "#history")) == 6, "organisation")
        await pilot.pause(1.5)  # past any slowed read
        assert len(table_keys(app, "#history")) == 6

    run_app(engine, desk("admin"), as_admin)


def test_history_mine_then_the_organisation(engine: Engine) -> None:
    k = build_ticket_desk(engine)

    async def as_omar(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = HistoryScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.read is not None, "history")
        assert table_keys(app, "#history") == [k["eve"]]  # the one omar owns
        assert screen.check_action("organisation", ()) is False  # not offered to an expert

    run_app(engine, desk("omar"), as_omar)

    async def as_admin(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = HistoryScreen()
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.read is not None, "history")
        assert table_keys(app, "#history") == []
        await pilot.press("o")
        await wait_until(pilot, lambda: len(table_keys(app, "#history")) == 6, "organisation")
        table = app.screen.query_one("#history", DataTable)
        assert [str(c.label) for c in table.columns.values()][-1] == "User"
        assert table_keys(app, "#history")[0] == k["eve"]
        await pilot.press("c")
        await wait_until(pilot, lambda: table_keys(app, "#history")[0] == k["old"], "oldest")

    run_app(engine, desk("admin"), as_admin)


# -- the board ---------------------------------------------------------------------------------


def test_board_shows_walk_ins_then_now_serving_and_drops_resolved(engine: Engine) -> None:
    """The terminal hall board (``cxdesk board``): walk-ins only, by first name and initial;
    a pull moves the customer to "Now serving" with the expert's first name."""
    build_small_desk(engine)
    with transaction(engine) as session:  # a hand-opened ticket: not a customer in the hall
        draft = TicketDraft(title="Manual", team="360", customer_name="Manny Manual")
        manual = create_ticket(session, actor=None, draft=draft).key
    ada, grace = walk_in(engine, "Ada", "Lovelace"), walk_in(engine, "Grace", "Hopper")

    async def script(app: BoardApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")
        await wait_until(pilot, lambda: table_keys(app, "#board-waiting"), "the rows")
        assert table_keys(app, "#board-waiting") == [ada, grace]  # not the manual ticket
        waiting = app.screen.query_one("#board-waiting", DataTable)
        assert [str(c) for c in waiting.get_row(ada)[:3]] == ["Ada L.", "360", "2"]
        assert pull(engine, "maya", "360") == manual
        assert pull(engine, "omar", "360") == ada  # another terminal calls Ada
        await wait_until(pilot, lambda: table_keys(app, "#board-serving") == [ada], "the pull")
        serving = app.screen.query_one("#board-serving", DataTable)
        assert [str(c) for c in serving.get_row(ada)[:3]] == ["Ada L.", "Omar", "360"]
        assert table_keys(app, "#board-waiting") == [grace]
        with unit_of_work(engine) as session:
            update_ticket(session, actor=get_user(session, "omar"), key=ada,
                          comment="fixed", changes={"status": "resolved"})  # fmt: skip
        await wait_until(pilot, lambda: not table_keys(app, "#board-serving"), "drop off")

    run_app(engine, lambda e: BoardApp(e, poll_seconds=0.2), script)


# -- the "done when", keyboard only ----------------------------------------------------


def test_admin_filters_exports_moves_to_resolved_and_sees_board_and_stream(
    engine: Engine, tmp_path: Path
) -> None:
    """On the demo desk: filter to high-priority open tickets of one team, export them to
    .xlsx, move the card on the kanban to resolved, see it leave the board and appear in the
    stream."""
    build_demo(engine)
    with read_session(engine) as session:
        key = session.exec(
            select(Ticket.key).where(Ticket.status == "new").order_by(col(Ticket.id))
        ).first()
        team = session.exec(
            select(Team.name).join(Ticket, col(Ticket.team_id) == col(Team.id)).where(
                Ticket.key == key)
        ).one()  # fmt: skip
    assert key is not None
    with unit_of_work(engine) as session:  # an expert of the team took it and raised it
        update_ticket(session, actor=get_user(session, "admin"), key=key, comment="urgent",
                      changes={"status": "open", "priority": "high"})  # fmt: skip
    target = tmp_path / "hot.xlsx"

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
        await pilot.press(*DEMO_PASSWORD, "enter")
        await wait_until(pilot, lambda: app.user is not None, "the login")
        await palette(pilot, "Tickets")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketsScreen), "the list")
        screen = app.screen
        assert isinstance(screen, TicketsScreen)
        await wait_until(pilot, lambda: screen.page is not None, "the first page")
        # "/" is the search field; shift+tab walks back to priority, status and team.
        await pilot.press("slash", "shift+tab", "shift+tab", *"high", "shift+tab", *"open",
                          "shift+tab", "shift+tab", *team, "enter")  # fmt: skip
        await wait_until(pilot, lambda: table_keys(app, "#tickets") == [key], "the filter")
        assert (screen.flt.team, screen.flt.status, screen.flt.priority) == (team, "open", "high")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "the dialog")
        await pilot.press("end", "ctrl+u", *str(target), "enter")
        await wait_until(pilot, target.exists, "the export")

        await palette(pilot, "Board")
        await wait_until(pilot, lambda: key in table_keys(app, "#board-waiting"), "the board")

        await palette(pilot, "Kanban")
        await wait_until(pilot, lambda: isinstance(app.screen, KanbanScreen), "the kanban")
        kanban = app.screen
        assert isinstance(kanban, KanbanScreen)
        await wait_until(pilot, lambda: kanban.highlighted_card() is not None, "a card")
        await pilot.press("right")  # the open column
        for _ in range(60):
            if kanban.highlighted_card() == (1, key):
                break
            await pilot.press("down")
        assert kanban.highlighted_card() == (1, key)
        for column, status in ((2, "escalated"), (3, "resolved")):
            await pilot.press("shift+right")
            await wait_until(pilot, lambda: isinstance(app.screen, MoveDialog), "the dialog")
            await pilot.press("enter")  # the pre-filled comment is enough
            moved = (column, key)
            await wait_until(pilot, lambda: kanban.highlighted_card() == moved, status)  # noqa: B023

        await palette(pilot, "Board")
        await wait_until(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")
        await wait_until(pilot, lambda: table_keys(app, "#board-waiting"), "its rows")
        assert key not in table_keys(app, "#board-waiting")

        await palette(pilot, "Stream")
        await wait_until(pilot, lambda: isinstance(app.screen, StreamScreen), "the stream")
        stream = app.screen
        assert isinstance(stream, StreamScreen)
        await wait_until(pilot, lambda: stream.read is not None, "the events")
        assert stream.read is not None
        changed = [e for e in stream.read.events if e.kind == "ticket.status_changed"]
        assert (changed[0].ticket_key, changed[0].to_value) == (key, "resolved")

    run_app(engine, desk("admin"), script)
    sheet = openpyxl.load_workbook(target).active
    assert sheet is not None
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [key]
    with read_session(engine) as session:
        assert session.exec(select(Ticket.status).where(Ticket.key == key)).one() == "resolved"
