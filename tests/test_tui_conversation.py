"""The ticket screen's conversation driven by keys (App.run_test + Pilot), on SQLite and
PostgreSQL: the three kinds told apart in words, an attachment saved to a path (and replaced
only after a yes), the customer's history opening another ticket, and Message customer.

The app runs on its own engine (``tests.tui_helpers.run_app``): no statement on the event
loop's thread. Every step waits for the thing it checks, never for a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static, TabbedContent

from cxdesk.app import CxDeskApp, create_app
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import read_session
from cxdesk.store.models import Comment, CommentKind
from cxdesk.store.tickets import get_ticket
from cxdesk.widgets.change_dialog import ChangeDialog
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from cxdesk.widgets.conversation import Conversation
from cxdesk.widgets.prompt_dialog import PromptDialog
from tests import tui_helpers
from tests.cli_helpers import table_counts
from tests.conversation_desk import ANN_EMAIL, LOG_FILE, NOTE, PICTURE, AnnsDesk, anns_desk
from tests.tui_helpers import AnyApp, log_in, notified, palette, wait_until, with_login

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # nothing here sends mail or SMS


@pytest.fixture
def desk(engine: Engine) -> AnnsDesk:
    return anns_desk(engine)


def run_as_maya(engine: Engine, script: Callable[[Any, Pilot[Any]], Awaitable[None]]) -> None:
    def build(app_engine: Engine) -> AnyApp:
        return create_app(app_engine, user="maya", poll_seconds=0.2)

    tui_helpers.run_app(engine, build, script, size=SIZE)


async def open_ticket(app: CxDeskApp, pilot: Pilot[Any], key: str) -> TicketScreen:
    await log_in(app, pilot)
    screen = TicketScreen(key)
    app.push_screen(screen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket")
    await wait_until(pilot, lambda: len(entries(screen)) >= 4, "the conversation drawn")
    return screen


def entries(screen: TicketScreen) -> list[Static]:
    return list(screen.query_one("#conversation", Conversation).query(Static))


def entry_text(entry: Static) -> str:
    return str(entry.render())


def test_the_conversation_shows_the_three_kinds_in_words(engine: Engine, desk: AnnsDesk) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, desk.key)
        shown = entries(screen)
        assert [sorted(e.classes) for e in shown] == [["note"], ["reply"], ["customer"], ["reply"]]
        texts = [entry_text(e) for e in shown]
        assert texts[0].startswith("INTERNAL  internal note · maya · ")
        assert NOTE in texts[0]
        assert texts[1].startswith("OUTGOING  to customer by email · maya · sent · ")
        assert texts[2].startswith(f"INCOMING  from {ANN_EMAIL} by email · ")
        assert f"attachment [1] {LOG_FILE[0]} · text/plain · 700 B" in texts[2]
        assert "attachment [2] .bashrc.png · image/png" in texts[2]
        assert "failed: 421 4.7.0 try again later" in texts[3]
        tabs = screen.query_one("#tabs", TabbedContent)
        assert str(tabs.get_tab("tab-history").label) == "Customer history (2)"
        for shown_next in ("tab-history", "tab-log", "tab-conversation"):
            await pilot.press("l")
            await wait_until(pilot, lambda: tabs.active == shown_next, shown_next)  # noqa: B023

    run_as_maya(engine, script)


def test_an_attachment_is_saved_to_a_path_and_replaced_only_after_a_yes(
    engine: Engine, desk: AnnsDesk, tmp_path: Path
) -> None:
    target = tmp_path / "saved.png"

    async def ask(app: CxDeskApp, pilot: Pilot[Any], number: str) -> Input:
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "which file")
        await pilot.press(number, "enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, PromptDialog) and app.screen.query_one(Input).value,
            "the path prompt",
        )
        return app.screen.query_one(Input)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, desk.key)
        path = await ask(app, pilot, "2")
        assert path.value == "~/bashrc.png"  # the sender's name, made harmless
        path.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, target.exists, "the file written")
        await wait_until(pilot, lambda: notified(app, "Saved .bashrc.png to"), "the notice")
        assert target.read_bytes() == PICTURE[2]

        path = await ask(app, pilot, "1")
        path.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "replace it?")
        await pilot.press("y")
        await wait_until(pilot, lambda: target.read_bytes() == LOG_FILE[2], "the file replaced")
        assert app.screen is screen

    run_as_maya(engine, script)


def test_the_history_key_opens_another_ticket_of_the_customer(
    engine: Engine, desk: AnnsDesk
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, desk.key)
        await pilot.press("h")
        history = screen.query_one("#history", DataTable)
        await wait_until(pilot, lambda: app.focused is history, "the history table")
        assert screen.query_one("#tabs", TabbedContent).active == "tab-history"
        assert [str(history.get_row_at(n)[0]) for n in range(history.row_count)] == [
            desk.by_phone, desk.by_email
        ]  # fmt: skip
        await pilot.press("down", "enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.key == desk.by_email,
            "the other ticket",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to the first ticket")

    run_as_maya(engine, script)


def test_message_customer_writes_a_reply_shown_as_outgoing(engine: Engine, desk: AnnsDesk) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, desk.key)
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, ChangeDialog)
        await wait_until(pilot, lambda: app.focused is dialog.query_one("#comment"), "the text")
        await pilot.press(*"Fixed in 4.2", "enter")
        await wait_until(
            pilot, lambda: dialog.failure is not None or app.screen is screen, "the send"
        )
        if dialog.failure is not None:
            raise dialog.failure  # the stub's NotImplementedError until the reply slice lands
        await wait_until(pilot, lambda: len(entries(screen)) == 5, "the reply shown")
        assert entry_text(entries(screen)[-1]).startswith("OUTGOING  to customer by email")

    run_as_maya(engine, script)
    with read_session(engine) as s:
        ticket = get_ticket(s, desk.key)
        replies = s.exec(
            select(Comment.body).where(
                Comment.ticket_id == ticket.id, Comment.kind == CommentKind.reply
            )
        ).all()
    assert "Fixed in 4.2" in replies


def test_a_ticket_without_files_or_history_offers_neither_key(
    engine: Engine, desk: AnnsDesk
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = TicketScreen(desk.stranger)
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.view is not None, "the ticket")
        assert screen.check_action("save_attachment", ()) is False
        assert screen.check_action("customer_history", ()) is False
        assert screen.check_action("message_customer", ()) is True
        await wait_until(pilot, lambda: len(entries(screen)) == 1, "the empty conversation")
        assert entry_text(entries(screen)[0]) == "No messages yet."

    run_as_maya(engine, script)


def test_a_refused_message_stays_in_the_dialog_as_one_line(
    engine: Engine, desk: AnnsDesk, tmp_path: Path
) -> None:
    before = table_counts(engine)
    missing = tmp_path / "missing.pdf"

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await open_ticket(app, pilot, desk.key)
        await palette(pilot, "Message customer")  # the key's command, found by name
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        dialog = app.screen
        dialog.query_one("#comment", Input).value = "Here is the fix"
        dialog.query_one("#attachments", Input).value = str(missing)
        dialog.query_one("#attachments", Input).focus()
        await pilot.press("enter")
        error = dialog.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "Not sent: " in str(error.render()), "the refusal")
        expected = f"Not sent: Cannot read attachment {missing}: No such file or directory"
        assert str(error.render()) == expected
        assert app.screen is dialog

    run_as_maya(engine, script)
    assert table_counts(engine) == with_login(before)


def test_saving_over_a_folder_is_refused_in_one_line(
    engine: Engine, desk: AnnsDesk, tmp_path: Path
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await open_ticket(app, pilot, desk.key)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "which file")
        await pilot.press("9", "enter")  # there are two
        await wait_until(pilot, lambda: notified(app, "No attachment 9: type 1 to 2"), "refusal")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptDialog), "which file")
        await pilot.press("1", "enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, PromptDialog) and app.screen.query_one(Input).value,
            "the path prompt",
        )
        app.screen.query_one(Input).value = str(tmp_path)
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "it is a folder"), "the refusal")

    run_as_maya(engine, script)
