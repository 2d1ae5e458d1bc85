"""Driving the desk's apps in a test (App.run_test + Pilot), shared by the TUI test modules.

``run_app`` gives the app its own engine on the test's database (as another terminal would) and
fails the test if the app ran any statement on the event loop's thread: the UI never waits for
the database. The rest press keys as a person does and wait for a condition, never a fixed
sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, event
from textual.app import App
from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from cxdesk.app import CxDeskApp
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import make_engine
from tests.cli_helpers import TEST_PASSWORD

AnyApp = App[Any]


def run_app(
    engine: Engine,
    build: Callable[[Engine], AnyApp],
    script: Callable[[Any, Pilot[Any]], Awaitable[None]],
    *,
    size: tuple[int, int],
) -> None:
    """Run ``script`` on the app ``build`` makes on its own engine, in a terminal of ``size``;
    fail if any statement ran on the event loop's thread."""
    app_engine = make_engine(engine.url.render_as_string(hide_password=False))
    on_loop: list[str] = []

    @event.listens_for(app_engine, "before_cursor_execute")
    def _not_on_the_loop(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            on_loop.append(statement)

    async def main() -> None:
        app = build(app_engine)
        _keep_notices(app)
        async with app.run_test(size=size) as pilot:
            await script(app, pilot)

    try:
        asyncio.run(main())
    finally:
        app_engine.dispose()
    assert on_loop == [], f"statements ran on the event loop: {on_loop[:3]}"


async def wait_until(
    pilot: Pilot[Any], condition: Callable[[], object], what: str, timeout: float = 60.0
) -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds.

    The timeout only keeps a broken test from hanging: it is far beyond what any step takes on
    a quiet machine (10 s timed out on a loaded one, two cores running the suite, a CPU hog and
    other work)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def log_in(app: CxDeskApp, pilot: Pilot[Any], password: str = TEST_PASSWORD) -> None:
    """With the username preselected (``--user``), type the password and press Enter."""
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
    await pilot.press(*password, "enter")
    await wait_until(pilot, lambda: app.user is not None, "the login")


async def queues_loaded(app: CxDeskApp, pilot: Pilot[Any]) -> None:
    """Wait for the queues screen with the small desk's (``tests/desk.py``) rows: "Any of my
    teams" and its three queues."""
    await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues screen")
    await wait_until(
        pilot, lambda: app.screen.query_one("#queues", DataTable).row_count == 4, "the queues"
    )


async def open_pulled_ticket(app: CxDeskApp, pilot: Pilot[Any]) -> TicketScreen:
    """Log in to the small desk, pull with ``n`` on its first queue, and wait for the ticket's
    screen with its fields."""
    await log_in(app, pilot)
    await queues_loaded(app, pilot)
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
    screen = app.screen
    assert isinstance(screen, TicketScreen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket's fields")
    return screen


async def palette(pilot: Pilot[Any], name: str) -> None:
    """Open the command palette, type ``name`` and take the first match, once it is listed
    first (typed before the palette has its focus, or Enter before the search has answered,
    the keys go elsewhere: a busy machine did both)."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, CommandPalette) and isinstance(app.focused, CommandInput),
        "the palette",
    )
    await pilot.press(*name)

    def listed_first() -> bool:
        matches = app.screen.query_one(CommandList)
        return (
            app.screen.query_one(CommandInput).value == name
            and matches.option_count > 0
            and name.lower() in str(matches.get_option_at_index(0).prompt).lower()
        )

    await wait_until(pilot, listed_first, f"{name!r} listed in the palette")
    await pilot.press("enter")


async def choose(pilot: Pilot[Any], text: str) -> None:
    """On a focused Select: open it, type to find the choice, take it."""
    await pilot.press("enter", *text, "enter")


_NOTICES: weakref.WeakKeyDictionary[AnyApp, list[str]] = weakref.WeakKeyDictionary()


def _keep_notices(app: AnyApp) -> None:
    """Remember every notification the app shows: Textual drops one when its timeout (5 s)
    has passed, which on a loaded machine can be before a test's next look at the screen."""
    shown = _NOTICES.setdefault(app, [])
    show = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> None:
        shown.append(str(message))
        show(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]


def notices(app: AnyApp) -> list[str]:
    """Every notification the app has shown, in order, expired ones included."""
    return _NOTICES.get(app) or [n.message for n in app._notifications]


def notified(app: AnyApp, text: str) -> bool:
    """Whether a notification shown so far contains ``text``."""
    return any(text in message for message in notices(app))


def with_login(before: dict[str, int]) -> dict[str, int]:
    """``table_counts`` after an expert's first desk login on a desk with counts ``before``:
    the login makes them available (a ``presence`` row and its ``user.presence_changed``
    line in the log), and writes nothing else."""
    return {**before, "presence": before["presence"] + 1, "event": before["event"] + 1}


def drawn_text(app: AnyApp) -> str:
    """Every character the screen would send to the terminal as text (styles and cursor
    moves are Textual's own)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)
