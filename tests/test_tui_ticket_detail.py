"""The ticket detail driven by keys (App.run_test + Pilot), on SQLite and PostgreSQL: the
escalation timeline and its step key, and the requester's close then feedback.

The app runs on its own engine (``tests.tui_helpers.run_app``): no statement on the event
loop's thread. Workers are waited for by polling a condition, never by fixed sleeps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select, Static
from textual.widgets._footer import FooterKey

from cxdesk.app import CxDeskApp, create_app
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.base import shown_time
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.ticket_view import THANK_YOU
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.escalation_steps import ENGINEERING, STEP_EVENT
from cxdesk.store.models import Comment, Event, Ticket
from cxdesk.widgets.change_dialog import ChangeDialog
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from cxdesk.widgets.timeline import Timeline
from tests import tui_helpers
from tests.desk import build_small_desk, pull
from tests.tui_helpers import AnyApp, choose, log_in, notices, notified, wait_until

SIZE = (140, 45)


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # nothing here sends mail or SMS


def run_as(engine: Engine, user: str, script: Callable[[Any, Pilot[Any]], Awaitable[None]]) -> None:
    def build(app_engine: Engine) -> AnyApp:
        return create_app(app_engine, user=user, poll_seconds=0.2)

    tui_helpers.run_app(engine, build, script, size=SIZE)


def omars_ticket(engine: Engine) -> str:
    """A ticket omar opened by hand on team 360: he is its requester."""
    build_small_desk(engine)
    with unit_of_work(engine) as s:
        key = ops.create_manual_ticket(
            s, actor=get_user(s, "omar"), customer_email="c@example.com", team="360",
            comment="Exports fail on large surveys",
        ).key  # fmt: skip
    assert key is not None
    return key


def stored(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as s:
        return ops.get_ticket(s, key)


def footer_actions(app: AnyApp) -> set[str]:
    return {key.action for key in app.screen.query(FooterKey)}


def timeline_text(screen: TicketScreen) -> str:
    return screen.query_one("#timeline", Timeline).render().plain


def note_text(screen: TicketScreen) -> str:
    note = screen.query_one("#requester-note", Static)
    return str(note.render()) if note.display else ""


async def open_ticket(app: CxDeskApp, pilot: Pilot[Any], key: str) -> TicketScreen:
    await log_in(app, pilot)
    screen = TicketScreen(key)
    app.push_screen(screen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket")
    return screen


def test_escalation_timeline_and_step_key(engine: Engine) -> None:
    key = omars_ticket(engine)
    with unit_of_work(engine) as s:
        ops.update_ticket(s, actor=get_user(s, "maya"), key=key, comment="Needs engineering",
                          changes={"status": "escalated"})  # fmt: skip
    ticket = stored(engine, key)
    estimate = date.today() + timedelta(days=10)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, key)
        assert screen.query_one("#escalation").display
        lines = timeline_text(screen).splitlines()
        assert lines == [
            f"✔ submitted                {shown_time(ticket.created_at)}",
            f"▶ under evaluation         {shown_time(ticket.escalated_at)}",
            "○ engineering in progress",
            "○ verify resolution",
            "○ resolved",
            "Estimated resolution: not set",
        ]
        timeline = screen.query_one("#timeline", Timeline)
        await wait_until(pilot, lambda: timeline.size.height == len(lines), "all of it drawn")
        await wait_until(pilot, lambda: "escalation_step" in footer_actions(app), "the a key")
        assert not {"close_ticket", "feedback"} & footer_actions(app)  # maya did not submit it

        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the step dialog")
        dialog = app.screen
        await choose(pilot, "engineering")
        await wait_until(
            pilot, lambda: dialog.query_one("#value", Select).value == ENGINEERING, "the step"
        )
        await pilot.press("tab", *estimate.isoformat(), "tab", *"Engineering has it", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")

        with read_session(engine) as s:
            [event] = s.exec(select(Event).where(Event.kind == STEP_EVENT)).all()
            comments = s.exec(select(Comment.body).order_by(col(Comment.id))).all()
        assert (event.from_value, event.to_value) == ("under evaluation", ENGINEERING)
        assert comments[-1] == "Engineering has it"
        assert stored(engine, key).estimated_resolution == estimate
        expected = f"▶ engineering in progress  {shown_time(event.created_at)}"
        await wait_until(pilot, lambda: expected in timeline_text(screen), "the new step")
        assert f"Estimated resolution: {estimate.isoformat()}" in timeline_text(screen)
        assert f"✔ under evaluation         {shown_time(ticket.escalated_at)}" in (
            timeline_text(screen)
        )

    run_as(engine, "maya", script)


def test_requester_closes_then_leaves_feedback_once(engine: Engine) -> None:
    key = omars_ticket(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        history = HistoryScreen()
        app.push_screen(history)
        await wait_until(pilot, lambda: history.read is not None, "my tickets")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        screen = app.screen
        assert isinstance(screen, TicketScreen)
        await wait_until(pilot, lambda: "close_ticket" in footer_actions(app), "the x key")
        assert "feedback" not in footer_actions(app)
        assert not screen.query_one("#escalation").display  # never escalated

        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: stored(engine, key).status == "closed", "the close")
        await wait_until(pilot, lambda: "has been closed" in note_text(screen), "closed message")
        assert "open a new ticket and reference this ticket ID" in note_text(screen)
        await wait_until(pilot, lambda: "feedback" in footer_actions(app), "the f key")
        assert "close_ticket" not in footer_actions(app)

        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "feedback dialog")
        dialog = app.screen
        await choose(pilot, "4")
        await wait_until(pilot, lambda: dialog.query_one("#value", Select).value == "4", "4")
        await pilot.press("tab", *"Quick and kind", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")
        ticket = stored(engine, key)
        assert (ticket.feedback_rating, ticket.feedback_comment) == (4, "Quick and kind")
        await wait_until(pilot, lambda: note_text(screen) == THANK_YOU, "the thank-you")
        await wait_until(pilot, lambda: "feedback" not in footer_actions(app), "no f key")

        await pilot.press("f")  # nothing: the key is gone
        await pilot.pause(0.1)
        assert app.screen is screen
        screen.action_feedback()  # forced anyway: the store refuses a second feedback
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "forced dialog")
        forced = app.screen
        await choose(pilot, "1")
        await pilot.press("tab", "enter")
        error = forced.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "already given" in str(error.render()), "the refusal")
        assert stored(engine, key).feedback_rating == 4

    run_as(engine, "omar", script)


def test_someone_else_cannot_close_the_ticket(engine: Engine) -> None:
    key = omars_ticket(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, key)
        await wait_until(pilot, lambda: "comment" in footer_actions(app), "the footer")
        assert not {"close_ticket", "feedback", "escalation_step"} & footer_actions(app)
        await pilot.press("x")  # nothing: not her key
        await pilot.pause(0.1)
        assert app.screen is screen

        screen.action_close_ticket()  # forced anyway
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        refusal = f"Only the person who submitted {key} can close it"
        await wait_until(pilot, lambda: notified(app, refusal), "the refusal")
        [message] = [m for m in notices(app) if refusal in m]
        assert "\n" not in message
        assert stored(engine, key).status == "new"
        assert note_text(screen) == ""

    run_as(engine, "maya", script)


def test_estimate_typed_wrong_is_refused_in_the_dialog(engine: Engine) -> None:
    key = omars_ticket(engine)
    with unit_of_work(engine) as s:
        ops.update_ticket(s, actor=get_user(s, "maya"), key=key, comment="Needs engineering",
                          changes={"status": "escalated"})  # fmt: skip

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await open_ticket(app, pilot, key)
        await wait_until(pilot, lambda: "escalation_step" in footer_actions(app), "the a key")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the step dialog")
        dialog = app.screen
        await pilot.press("tab")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the estimate field")
        await pilot.press(*"next week", "tab", *"soon", "enter")
        error = dialog.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "not a date" in str(error.render()), "the refusal")
        assert app.screen is dialog
        with read_session(engine) as s:
            assert s.exec(select(Event).where(Event.kind == STEP_EVENT)).all() == []
        assert stored(engine, key).estimated_resolution is None

    run_as(engine, "maya", script)


def test_noshow_key_asks_first_then_recalls_the_customer(engine: Engine) -> None:
    build_small_desk(engine)
    with unit_of_work(engine) as s:
        draft = ops.TicketDraft(title="Ada needs help", team="360", customer_phone="+14155552671")
        key = ops.create_ticket(s, actor=None, draft=draft).key
    assert key is not None and pull(engine, "maya", "360") == key

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, key)
        await wait_until(pilot, lambda: "noshow" in footer_actions(app), "the n key")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("n")  # n again cancels: nothing happens
        await wait_until(pilot, lambda: app.screen is screen, "back on the ticket")
        assert stored(engine, key).recalls == 0

        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: stored(engine, key).recalls == 1, "the recall")
        await wait_until(pilot, lambda: notified(app, "back at the head of its queue"), "told")
        ticket = stored(engine, key)
        assert ticket.owner_id is None and ticket.queue_band == 0
        # Waiting again: the key leaves the Footer; forced anyway, the store says why.
        await wait_until(pilot, lambda: "noshow" not in footer_actions(app), "no n key")
        screen.store_noshow()
        await wait_until(pilot, lambda: notified(app, "waiting in its queue"), "the refusal")

    run_as(engine, "maya", script)
