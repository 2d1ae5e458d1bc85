"""A burst of keys (a badge or barcode scanner, a password manager, ``tmux send-keys "maya" Tab
"demo" Enter``) fills each field as if typed one key at a time (``cxdesk/keys_in_order.py``).

The burst goes in as the terminal delivers it: one chunk of text through Textual's own input
parser (``XTermParser``, as the Linux driver's read loop feeds it), every event it makes handed
to the driver before the app handles any. ``pilot.press`` waits after each key, so it never
showed the bug. A bracketed paste still lands as text in the field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from textual._xterm_parser import XTermParser
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label

from cxdesk.app import CxDeskApp, create_app
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.login import LoginScreen
from tests.cli_helpers import TEST_PASSWORD
from tests.desk import build_small_desk
from tests.tui_helpers import run_app, wait_until

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


def run(engine: Engine, user: str | None, script: Any, size: tuple[int, int] = (120, 40)) -> None:
    run_app(
        engine,
        lambda app_engine: create_app(app_engine, user=user, poll_seconds=0.2, deliver=False),
        script,
        size=size,
    )


def send_burst(app: CxDeskApp, chunk: str) -> None:
    """Deliver ``chunk`` as one read from the terminal: parsed by Textual's parser, and all
    its events queued for the app at once."""
    assert app._driver is not None
    parser = XTermParser()
    for message in list(parser.feed(chunk)):
        app._driver.process_message(message)


def value(app: CxDeskApp, selector: str) -> str:
    return app.screen.query_one(selector, Input).value


def focused_id(app: CxDeskApp) -> str | None:
    return app.focused.id if app.focused is not None else None


def test_a_password_manager_logs_in_with_tab_or_enter_between_fields(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: focused_id(app) == "username", "the login form")
        send_burst(app, f"nobody\t{TEST_PASSWORD}\r")  # refused: the password field is cleared
        await wait_until(pilot, lambda: "Unknown user" in label_text(app), "the refusal")
        assert value(app, "#username") == "nobody"  # not "nobody" + the password
        assert focused_id(app) == "password"
        send_burst(app, "\x1b[Z")  # shift+tab: back to the username
        await wait_until(pilot, lambda: focused_id(app) == "username", "shift+tab back")
        app.screen.query_one("#username", Input).clear()
        send_burst(app, f"maya\r{TEST_PASSWORD}\r")  # Enter moves to the password too
        await wait_until(pilot, lambda: app.user is not None, "the login")
        assert app.user is not None and app.user.username == "maya"
        await wait_until(pilot, lambda: app.screen.query(DataTable), "the queues")
        await wait_until(
            pilot, lambda: app.screen.query_one(DataTable).row_count > 0, "the queues' rows"
        )

    run(engine, None, script)


def label_text(app: CxDeskApp) -> str:
    return " ".join(str(label.render()) for label in app.screen.query(Label))


def test_a_scanner_fills_the_check_in_form_in_one_burst(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login form")
        await wait_until(pilot, lambda: focused_id(app) == "password", "the password field")
        send_burst(app, f"{TEST_PASSWORD}\r")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await wait_until(pilot, lambda: focused_id(app) == "q-first_name", "the form")
        # Phone and username left empty; Enter opens the product's choices, "360" picks it.
        send_burst(app, "Ada\tLovelace\tada@example.com\t\t\t\r360\r\tExport fails")
        await wait_until(pilot, lambda: value(app, "#q-notes") == "Export fails", "the notes")
        assert [value(app, f"#q-{name}") for name in ("first_name", "last_name", "email")] == [
            "Ada",
            "Lovelace",
            "ada@example.com",
        ]
        assert value(app, "#q-phone") == value(app, "#q-username") == ""
        send_burst(app, "\r")
        await wait_until(pilot, lambda: "Checked in: EXP-1" in label_text(app), "the check-in")

    run(engine, "vera", script, size=(80, 24))


def test_a_bracketed_paste_still_lands_as_text(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: focused_id(app) == "password", "the login form")
        send_burst(app, f"{TEST_PASSWORD}\r")
        await wait_until(pilot, lambda: focused_id(app) == "q-first_name", "the form")
        # A paste with a tab and a newline in it: text for the field, no move, no submit;
        # the keys typed after it go to the same field.
        send_burst(app, f"{PASTE_START}Ada\tKing\nsecond line{PASTE_END}x")
        await wait_until(pilot, lambda: value(app, "#q-first_name").endswith("x"), "the paste")
        assert value(app, "#q-first_name") == "Ada\tKingx"
        assert focused_id(app) == "q-first_name"
        assert "Checked in" not in label_text(app) and value(app, "#q-last_name") == ""

    run(engine, "vera", script)
