"""Two people on one ticket in the desk (issue 16, items 5 and 6), driven by keys with Pilot on
SQLite and PostgreSQL: a save over someone else's change is refused in the dialog with who and
what, the typed comment kept, and a second Enter saves; the ticket screen shows who else has
the ticket open, viewing or editing, and forgets them once their heartbeat stops."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import Input, Label

from cxdesk.app import CxDeskApp
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.ticket_presence import TicketPresence
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Comment, TicketViewer, User, utcnow
from cxdesk.store.ticket_presence import STALE_AFTER, beat
from cxdesk.widgets.change_dialog import ChangeDialog
from tests.test_tui_ticket_detail import (  # noqa: F401 (_no_delivery: an autouse fixture)
    _no_delivery,
    omars_ticket,
    open_ticket,
    run_as,
    stored,
)
from tests.tui_helpers import choose, wait_until


def test_a_stale_save_is_refused_with_who_and_what_and_the_comment_kept(engine: Engine) -> None:
    key = omars_ticket(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, key)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        dialog = app.screen
        await choose(pilot, "high")
        await pilot.press("tab", *"Customer is blocked")
        # Another terminal saves first, between this screen's read and its save.
        with unit_of_work(engine) as s:
            ops.update_ticket(s, actor=get_user(s, "omar"), key=key, comment="Fixed it",
                              changes={"status": "resolved"})  # fmt: skip
        await pilot.press("enter")
        error = dialog.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "Omar changed status" in str(error.render()), "refusal")
        assert str(error.render()) == (
            "Not saved: Omar changed status to resolved just now; reload and try again"
        )
        assert app.screen is dialog
        assert dialog.query_one("#comment", Input).value == "Customer is blocked"
        assert stored(engine, key).priority == "medium"  # nothing written
        await wait_until(pilot, lambda: screen.view is not None
                         and screen.view.record["status"] == "resolved", "the reload")  # fmt: skip

        await pilot.press("enter")  # the same dialog again, over the version now shown
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")
        ticket = stored(engine, key)
        assert (ticket.priority, ticket.status) == ("high", "resolved")  # both kept
        with read_session(engine) as s:
            bodies = s.exec(select(Comment.body).order_by(col(Comment.id))).all()
        assert bodies[-2:] == ["Fixed it", "Customer is blocked"]

    run_as(engine, "maya", script)


def viewer_modes(engine: Engine) -> dict[str, str]:
    """Each terminal's row on the ticket: username -> mode."""
    with read_session(engine) as s:
        rows = s.exec(
            select(User.username, TicketViewer.mode).join(
                User, col(User.id) == col(TicketViewer.user_id)
            )
        ).all()
    return dict(rows)


def test_the_ticket_screen_shows_who_else_is_on_it_until_they_leave(engine: Engine) -> None:
    key = omars_ticket(engine)

    def kenji_beats(mode: str) -> None:
        with transaction(engine) as s:
            kenji = get_user(s, "kenji")
            assert kenji.id is not None
            beat(s, key=key, user_id=kenji.id, terminal="kenji-laptop", mode=mode)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, key)
        line = screen.query_one(TicketPresence)
        await wait_until(pilot, lambda: viewer_modes(engine) == {"maya": "viewing"}, "my beat")
        assert not line.display  # nobody else: no line

        kenji_beats("viewing")
        await wait_until(pilot, lambda: str(line.render()) == "Kenji is viewing", "kenji")
        assert line.display
        kenji_beats("editing")
        await wait_until(pilot, lambda: str(line.render()) == "Kenji is editing", "editing")

        await pilot.press("c")  # a note's dialog open: maya is editing
        await wait_until(pilot, lambda: viewer_modes(engine).get("maya") == "editing", "mine")
        await pilot.press("escape")
        await wait_until(pilot, lambda: viewer_modes(engine).get("maya") == "viewing", "back")

        # Kenji's terminal stops beating: his last heartbeat ages past STALE_AFTER.
        with transaction(engine) as s:
            s.execute(
                update(TicketViewer)
                .where(col(TicketViewer.terminal) == "kenji-laptop")
                .values(heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=1))
            )
        await wait_until(pilot, lambda: not line.display, "kenji gone")
        await wait_until(pilot, lambda: "kenji" not in viewer_modes(engine), "his row deleted")

        await pilot.press("escape")  # maya leaves: her row goes at once
        await wait_until(pilot, lambda: viewer_modes(engine) == {}, "my row deleted")

    run_as(engine, "maya", script)
