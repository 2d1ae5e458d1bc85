"""The queues screen's pulls, typed with Pilot on SQLite and PostgreSQL: Enter on a queue opens
its waiting list and pulls nothing; ``n`` on "Any of my teams" takes the most urgent ticket
across the expert's teams; ``u`` on the ticket screen undoes the pull while its window is
open, and is gone from the Footer once it closes (the app's clock, not a sleep)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from cxdesk.app import CxDeskApp, utc_now
from cxdesk.screens.queues import ANY_LABEL, ANY_ROW, QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.waiting_list import WaitingListScreen
from cxdesk.store import tickets as ops
from cxdesk.store.db import transaction
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from tests.desk import build_small_desk
from tests.test_tui import check_in, run, stored_ticket
from tests.tui_helpers import log_in, notified, open_pulled_ticket, queues_loaded, wait_until


def urgent_ticket(engine: Engine, team: str) -> str:
    with transaction(engine) as s:
        draft = ops.TicketDraft(title="Export broken", team=team, priority="critical")
        key = ops.create_ticket(s, actor=None, draft=draft).key
    assert key is not None
    return key


def footer_has_undo(screen: TicketScreen) -> bool:
    return any(
        b.binding.action == "undo_pull" and b.enabled for b in screen.active_bindings.values()
    )


def test_enter_opens_the_waiting_list_and_pulls_nothing(engine: Engine) -> None:
    build_small_desk(engine)
    first, second = check_in(engine, "360"), check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        table = app.screen.query_one("#queues", DataTable)
        assert str(table.get_row(ANY_ROW)[1]) == ANY_LABEL
        await wait_until(pilot, lambda: str(table.get_row("360")[2]) == "2", "2 waiting in 360")
        await pilot.press("enter")  # the cursor starts on the first queue, 360
        await wait_until(pilot, lambda: isinstance(app.screen, WaitingListScreen), "the list")
        waiting = app.screen.query_one("#waiting", DataTable)
        await wait_until(pilot, lambda: waiting.row_count == 2, "two waiting")
        rows = [[str(cell) for cell in waiting.get_row_at(i)][:2] for i in range(2)]
        assert rows == [["1", first], ["2", second]]
        assert stored_ticket(engine, first)[0].owner_id is None
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "back to queues")
        assert stored_ticket(engine, first)[0].owner_id is None

    run(engine, "maya", script)


def test_any_of_my_teams_pulls_the_most_urgent_and_u_undoes_it(engine: Engine) -> None:
    build_small_desk(engine)
    check_in(engine, "360")
    urgent = urgent_ticket(engine, "Stats iQ")
    frozen = utc_now()  # the app's clock stands still: the undo window stays open

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: str(table.get_row(ANY_ROW)[2]) == "2", "2 in my teams")
        await pilot.press("up", "n")  # "Any of my teams"
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        screen = app.screen
        assert isinstance(screen, TicketScreen) and screen.key == urgent
        note = screen.query_one("#undo-note", Static)
        assert note.display and "u puts it back in its queue (15 s)" in str(note.render())
        assert footer_has_undo(screen)
        assert stored_ticket(engine, urgent)[0].owner_id is not None
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "back to queues")
        await wait_until(pilot, lambda: notified(app, f"{urgent} is back in queue Stats iQ"), "ok")
        ticket, _ = stored_ticket(engine, urgent)
        assert (ticket.owner_id, ticket.status) == (None, "new")

    run(engine, "maya", script, clock=lambda: frozen)


def test_the_undo_key_goes_when_the_window_closes(engine: Engine) -> None:
    build_small_desk(engine)
    key = check_in(engine, "360")
    now = [utc_now()]

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        screen = await open_pulled_ticket(app, pilot)
        assert footer_has_undo(screen)
        now[0] += timedelta(seconds=16)  # the app's clock moves past the window
        note = screen.query_one("#undo-note", Static)
        await wait_until(pilot, lambda: not note.display, "the notice to go")
        assert not footer_has_undo(screen)
        await pilot.press("u")  # nothing: the key is off
        await pilot.pause()
        assert isinstance(app.screen, TicketScreen)
        assert stored_ticket(engine, key)[0].owner_id is not None

    run(engine, "omar", script, clock=lambda: now[0])


def test_the_undo_key_goes_once_the_ticket_is_no_longer_mine(engine: Engine) -> None:
    """A no-show within the window hands the ticket back: nothing of mine is left to undo."""
    build_small_desk(engine)
    with transaction(engine) as s:
        draft = ops.TicketDraft(title="Ada needs help", team="360", customer_phone="+14155552671")
        key = ops.create_ticket(s, actor=None, draft=draft).key
    frozen = utc_now()  # the window stays open: only the owner changes

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        screen = app.screen
        assert isinstance(screen, TicketScreen) and screen.key == key
        await wait_until(pilot, lambda: footer_has_undo(screen), "the undo key")
        await pilot.press("n")  # no-show
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: stored_ticket(engine, key)[0].owner_id is None, "recall")
        note = screen.query_one("#undo-note", Static)
        await wait_until(pilot, lambda: not note.display, "the undo notice to go")
        assert not footer_has_undo(screen)

    run(engine, "maya", script, clock=lambda: frozen)
