"""The desk app through database outages (issue 13, item 2): App.run_test + Pilot, real parts.

- PostgreSQL (a cluster of the test's own, stopped and started): a login refused in one line,
  then the one line ("desk database unreachable, retrying") on the queues, a pull refused in one
  line, a screen opened meanwhile showing the line and no rows; once the server is back the
  line goes and the screen reads again, without a restart. The public board likewise.
- SQLite with the write lock held past the busy timeout: screens go on reading, the app's own
  delivery alone shows the line, and delivers what was queued once the lock is released.

Every wait is on what the test checks, never a sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.outbox import enqueue
from cxdesk.errors import DESK_UNREACHABLE
from cxdesk.screens.board import BoardApp, BoardScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.store import tickets as ops
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.migrate import upgrade
from cxdesk.widgets.desk_notice import DeskNotice
from tests.cli_helpers import TEST_PASSWORD
from tests.conftest import PgCluster
from tests.desk import build_small_desk
from tests.peers import SmtpPeer
from tests.test_delivery import WAIT_S
from tests.test_outages import outbox, queue_email, subjects
from tests.tui_helpers import log_in, palette, run_app
from tests.tui_helpers import wait_until as tui_wait


def notifications_of(app: App[None]) -> list[str]:
    """Every notification ``app`` shows from now on, kept (a toast goes after seconds)."""
    shown: list[str] = []
    notify = app.notify

    def keep(message: str, **options: Any) -> None:
        shown.append(message)
        notify(message, **options)

    app.notify = keep  # type: ignore[method-assign]
    return shown


def notice_shown(app: App[None]) -> bool:
    """Whether the screen on top shows the one line, saying what the test expects."""
    notices = app.screen.query(DeskNotice)
    return bool(notices) and str(notices.first().render()) == DESK_UNREACHABLE


@pytest.mark.slow
def test_the_desk_app_shows_one_line_while_the_database_is_away_then_reads_again(
    own_pg_cluster: PgCluster,
) -> None:
    engine = make_engine(own_pg_cluster.url)
    upgrade(engine)
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        key = ops.create_manual_ticket(session, actor=get_user(session, "admin"),
                                       customer_email="zoe@example.com", customer_name="Zoë",
                                       team="360", comment="Filters reset").key  # fmt: skip
    engine.dispose()

    def tickets_shown(app: CxDeskApp) -> list[str]:
        table = app.screen.query_one("#tickets", DataTable)
        return [str(table.get_row_at(n)[0]) for n in range(table.row_count)]

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        shown = notifications_of(app)
        await tui_wait(pilot, lambda: isinstance(app.focused, Input), "the login form")
        await asyncio.to_thread(own_pg_cluster.stop)
        await pilot.press(*TEST_PASSWORD, "enter")  # refused in one line; the form usable again
        await tui_wait(pilot, lambda: shown, "the login refused")
        await tui_wait(pilot, lambda: str(app.screen.query_one("#login-error", Label).render())
                       == "", "the form back")  # fmt: skip
        await asyncio.to_thread(own_pg_cluster.start)
        await pilot.press("enter")
        await tui_wait(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        assert not notice_shown(app)

        await asyncio.to_thread(own_pg_cluster.stop)
        await tui_wait(pilot, lambda: notice_shown(app), "the line on the queues", WAIT_S)
        await pilot.press("n")  # an action fails with its own line; nothing else happens
        await tui_wait(pilot, lambda: len(shown) == 2, "the pull refused")
        await palette(pilot, "Tickets")  # a screen opened meanwhile cannot read: the same line
        await tui_wait(pilot, lambda: isinstance(app.screen, TicketsScreen), "the tickets screen")
        await tui_wait(pilot, lambda: notice_shown(app), "the line on the tickets", WAIT_S)
        assert tickets_shown(app) == []

        await asyncio.to_thread(own_pg_cluster.start)
        await tui_wait(pilot, lambda: tickets_shown(app) == [key], "the tickets read again", WAIT_S)
        await tui_wait(pilot, lambda: not notice_shown(app), "the line gone", WAIT_S)
        assert len(shown) == 2, shown  # the login's and the pull's; a read's is the line alone
        assert all(m.startswith("Database error: connection failed") for m in shown), shown
        assert len(app.screen.query(DeskNotice)) == 0

    run_app(
        engine,
        lambda app_engine: create_app(app_engine, user="maya", poll_seconds=0.2, deliver=False),
        script,
        size=(120, 40),
    )


@pytest.mark.slow
def test_the_desk_apps_delivery_shows_the_line_through_a_sqlite_lock_then_delivers(
    sqlite_url: str, smtp_server: SmtpPeer
) -> None:
    """SQLite: readers never wait for a writer, so the screens go on reading; delivery, which
    writes, cannot, and that alone shows the line until the lock is released."""
    engine = make_engine(sqlite_url)
    build_small_desk(engine)
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "mail_from": "desk@example.com"}
    settings = Settings(extra={"smtp": smtp})

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await tui_wait(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        await asyncio.to_thread(queue_email, engine, "before")
        await tui_wait(pilot, lambda: subjects(smtp_server) == ["before"], "the first email")
        await tui_wait(pilot, lambda: [r.status for r in outbox(engine)] == ["sent"], "its result")

        with transaction(engine) as session:  # BEGIN IMMEDIATE: the write lock, held
            session.execute(text("UPDATE outbox SET attempts = attempts WHERE 0"))
            await tui_wait(pilot, lambda: notice_shown(app), "the line", WAIT_S)
            enqueue(session, channel="email", to="zoe@example.com", subject="in the lock",
                    body="Queued while the lock was held")  # fmt: skip
        await tui_wait(pilot, lambda: "in the lock" in subjects(smtp_server), "the email", WAIT_S)
        await tui_wait(pilot, lambda: not app.screen.query(DeskNotice), "the line gone", WAIT_S)

    run_app(
        engine,
        lambda app_engine: create_app(
            app_engine, user="maya", poll_seconds=0.2, settings=settings, deliver=True
        ),  # fmt: skip
        script,
        size=(120, 40),
    )
    engine.dispose()


@pytest.mark.slow
def test_the_public_board_shows_one_line_while_the_database_is_away(
    own_pg_cluster: PgCluster,
) -> None:
    engine = make_engine(own_pg_cluster.url)
    upgrade(engine)

    async def script(app: BoardApp, pilot: Pilot[None]) -> None:
        shown = notifications_of(app)
        await tui_wait(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")
        await tui_wait(pilot, lambda: app.screen.board is not None, "the board's first read")
        await asyncio.to_thread(own_pg_cluster.stop)
        await tui_wait(pilot, lambda: notice_shown(app), "the line", WAIT_S)
        await asyncio.to_thread(own_pg_cluster.start)
        await tui_wait(pilot, lambda: not app.screen.query(DeskNotice), "the line gone", WAIT_S)
        assert shown == []  # the line only, not an error every poll

    run_app(engine, lambda app_engine: BoardApp(app_engine, poll_seconds=0.2), script,
            size=(120, 40))  # fmt: skip
    engine.dispose()
