"""Deliverers outlive database outages (issue 13, item 2), with real parts.

- ``cxdesk worker`` (the installed script, a real process) on a PostgreSQL cluster of the
  test's own: the server stopped, then started again on the same port; the worker says one
  line, keeps running and delivers a message queued after the restart to aiosmtpd.
- The same on SQLite with another connection holding the write lock (``BEGIN IMMEDIATE``)
  past the busy timeout; the message is queued in that very transaction.
- SIGTERM: the worker exits 0, each message it sent recorded, none left claimed.
- The desk app (Pilot) with its PostgreSQL server stopped: one line on the screen, a screen
  opened meanwhile shows it too; once the server is back the line goes and the screen reads
  again, without a restart. The public board (``cxdesk board``) likewise. The app's own
  delivery through a SQLite lock: the line while it lasts, then the message delivered.
- What counts as "unreachable" (real driver errors) and the backoff's bounds.

Every wait is on what the test checks (a line printed, a message received, the process
gone), never a sleep. The outages are short here; the logic is the same for a long one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, text
from sqlmodel import col, select
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.outbox import enqueue
from cxdesk.engine.worker import RETRY_CAP_S, RETRY_FIRST_S, retry_wait
from cxdesk.errors import DESK_UNREACHABLE, DeskError
from cxdesk.screens.board import BoardApp, BoardScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.store import tickets as ops
from cxdesk.store.db import is_unreachable, make_engine, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import OutboxMessage
from cxdesk.widgets.desk_notice import DeskNotice
from tests.cli_helpers import console_script
from tests.conftest import PgCluster
from tests.desk import build_small_desk
from tests.peers import SmtpPeer, free_port
from tests.tui_helpers import log_in, notified, palette, run_app
from tests.tui_helpers import wait_until as tui_wait

WAIT_S = 90.0
"""How long a test waits for the worker to reach a state before it fails."""


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until true; fail the test (not a timing assertion) if it never is."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {timeout:g} s for {what}")
        time.sleep(0.02)


def queue_email(engine: Engine, subject: str) -> int:
    with transaction(engine) as session:
        return enqueue(session, channel="email", to="zoe@example.com", subject=subject,
                       body="Hello").id or 0  # fmt: skip


def subjects(peer: SmtpPeer) -> list[str]:
    return [str(item.message["Subject"]) for item in peer.received]


def outbox(engine: Engine) -> list[OutboxMessage]:
    with read_session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


# -- a real `cxdesk worker` process ------------------------------------------------------------


@dataclass
class WorkerProcess:
    """``cxdesk worker`` running, with what it printed so far, line by line."""

    process: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    def lines_with(self, fragment: str) -> list[str]:
        return [line for line in self.out + self.err if fragment in line]

    def __str__(self) -> str:
        return "--- stdout ---\n" + "".join(self.out) + "--- stderr ---\n" + "".join(self.err)


@contextmanager
def worker_process(db_url: str, peer: SmtpPeer) -> Iterator[WorkerProcess]:
    """``cxdesk worker`` on ``db_url`` sending to ``peer``, once it said it runs; killed at the
    end if the test left it running."""
    env = dict(
        os.environ,
        CXDESK_DATABASE_URL=db_url,
        CXDESK_SMTP_HOST=peer.host,
        CXDESK_SMTP_PORT=str(peer.port),
        CXDESK_MAIL_FROM="Ask the Experts <desk@example.com>",
        COLUMNS="200",
    )
    process = subprocess.Popen(
        [str(console_script()), "worker", "--poll", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    worker = WorkerProcess(process)
    readers = [
        threading.Thread(target=lambda s=stream, into=into: into.extend(iter(s.readline, "")))
        for stream, into in ((process.stdout, worker.out), (process.stderr, worker.err))
    ]
    for reader in readers:
        reader.start()
    try:
        wait_until(lambda: worker.lines_with("Worker running") or process.poll() is not None,
                   "the worker to start")  # fmt: skip
        assert process.poll() is None, str(worker)
        yield worker
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for reader in readers:
            reader.join()


def stop_with_sigterm(worker: WorkerProcess) -> int:
    worker.process.send_signal(signal.SIGTERM)
    wait_until(lambda: worker.process.poll() is not None, "the worker to exit after SIGTERM")
    return worker.process.returncode


# -- outages -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_outlives_a_postgresql_restart(
    own_pg_cluster: PgCluster, smtp_server: SmtpPeer
) -> None:
    url = own_pg_cluster.url
    engine = make_engine(url)
    try:
        upgrade(engine)
        with worker_process(url, smtp_server) as worker:
            queue_email(engine, "before")
            wait_until(lambda: [r.status for r in outbox(engine)] == ["sent"], "the first email")

            own_pg_cluster.stop()
            wait_until(lambda: worker.lines_with(DESK_UNREACHABLE), "the worker to see the outage")
            own_pg_cluster.start()
            engine.dispose()  # the test's own pool holds connections to the stopped server
            queue_email(engine, "after the restart")
            wait_until(lambda: "after the restart" in subjects(smtp_server), "the second email")
            wait_until(lambda: worker.lines_with("reachable again"), "the worker to say so")

            assert worker.process.poll() is None, str(worker)  # still running
            assert len(worker.lines_with(DESK_UNREACHABLE)) == 1, str(worker)  # not per retry
            assert not worker.lines_with("Traceback"), str(worker)
            assert stop_with_sigterm(worker) == 0, str(worker)
        assert subjects(smtp_server) == ["before", "after the restart"]
        assert [row.status for row in outbox(engine)] == ["sent", "sent"]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_worker_outlives_a_sqlite_lock_held_past_the_busy_timeout(
    sqlite_url: str, smtp_server: SmtpPeer
) -> None:
    engine = make_engine(sqlite_url)
    try:
        with worker_process(sqlite_url, smtp_server) as worker:
            queue_email(engine, "before")
            wait_until(lambda: [r.status for r in outbox(engine)] == ["sent"], "the first email")

            with transaction(engine) as session:  # BEGIN IMMEDIATE: the write lock, held
                session.execute(text("UPDATE outbox SET attempts = attempts WHERE 0"))
                wait_until(lambda: worker.lines_with(DESK_UNREACHABLE), "the worker to give up")
                enqueue(session, channel="email", to="zoe@example.com", subject="in the lock",
                        body="Queued while the lock was held")  # fmt: skip
            wait_until(lambda: "in the lock" in subjects(smtp_server), "the second email")

            assert worker.process.poll() is None, str(worker)
            [line] = worker.lines_with(DESK_UNREACHABLE)
            assert line.endswith(f"{DESK_UNREACHABLE}: database is locked\n"), line
            assert not worker.lines_with("Traceback"), str(worker)
            assert stop_with_sigterm(worker) == 0, str(worker)
        assert [row.status for row in outbox(engine)] == ["sent", "sent"]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigterm_stops_a_worker_after_its_batch_with_nothing_left_claimed(
    sqlite_url: str, smtp_server: SmtpPeer
) -> None:
    engine = make_engine(sqlite_url)
    try:
        with transaction(engine) as session:
            for n in range(60):  # more than one batch
                enqueue(session, channel="email", to=f"c{n}@example.com", subject=f"#{n}",
                        body="Hello")  # fmt: skip
        smtp_server.delay = 0.05  # the batch is under way when the signal comes
        with worker_process(sqlite_url, smtp_server) as worker:
            wait_until(lambda: smtp_server.received, "the first email")
            assert stop_with_sigterm(worker) == 0, str(worker)
            assert worker.lines_with("Worker stopped."), str(worker)
        rows = outbox(engine)
        sent = [row for row in rows if row.status == "sent"]
        waiting = [row for row in rows if row.status != "sent"]
        assert len(sent) == len(smtp_server.received)  # each message sent was recorded
        assert len(set(subjects(smtp_server))) == len(sent)
        # The rest wait unclaimed, their claim not counted: another worker takes them at once.
        assert all(
            row.status == "pending" and row.claimed_until is None and row.attempts == 0
            for row in waiting
        ), (str(worker), [(r.subject, r.status, r.claimed_until, r.attempts) for r in rows])
    finally:
        engine.dispose()


# -- the desk app -----------------------------------------------------------------------------


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
        await log_in(app, pilot)
        await tui_wait(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        assert not notice_shown(app)

        await asyncio.to_thread(own_pg_cluster.stop)
        await tui_wait(pilot, lambda: notice_shown(app), "the line on the queues", WAIT_S)
        await pilot.press("n")  # an action fails with its own line; nothing else happens
        await tui_wait(pilot, lambda: notified(app, "Database error: connection failed"), "")
        await palette(pilot, "Tickets")  # a screen opened meanwhile cannot read: the same line
        await tui_wait(pilot, lambda: isinstance(app.screen, TicketsScreen), "the tickets screen")
        await tui_wait(pilot, lambda: notice_shown(app), "the line on the tickets", WAIT_S)
        assert tickets_shown(app) == []

        await asyncio.to_thread(own_pg_cluster.start)
        await tui_wait(pilot, lambda: tickets_shown(app) == [key], "the tickets read again", WAIT_S)
        await tui_wait(pilot, lambda: not notice_shown(app), "the line gone", WAIT_S)
        shown = [n.message for n in app._notifications]
        assert len(shown) == 1, shown  # the pull's; a read's failure is the line alone
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
        await tui_wait(pilot, lambda: isinstance(app.screen, BoardScreen), "the board")
        await tui_wait(pilot, lambda: app.screen.rows is not None, "the board's first read")
        await asyncio.to_thread(own_pg_cluster.stop)
        await tui_wait(pilot, lambda: notice_shown(app), "the line", WAIT_S)
        await asyncio.to_thread(own_pg_cluster.start)
        await tui_wait(pilot, lambda: not app.screen.query(DeskNotice), "the line gone", WAIT_S)
        assert not app._notifications  # the line only, not an error every poll

    run_app(engine, lambda app_engine: BoardApp(app_engine, poll_seconds=0.2), script,
            size=(120, 40))  # fmt: skip
    engine.dispose()


# -- what counts as an outage, and the backoff ---------------------------------------------------


def test_unreachable_means_a_server_away_or_a_lock_not_a_mistake(sqlite_url: str) -> None:
    away = make_engine(f"postgresql://cxdesk@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(DeskError) as refused, read_session(away) as session:
        session.execute(text("SELECT 1"))
    assert is_unreachable(refused.value)

    engine = make_engine(sqlite_url)
    try:
        with transaction(engine) as holder:
            holder.execute(text("UPDATE outbox SET attempts = attempts WHERE 0"))
            path = sqlite_url.removeprefix("sqlite:///")
            with (
                closing(sqlite3.connect(path, timeout=0)) as other,
                pytest.raises(sqlite3.OperationalError) as locked,
            ):
                other.execute("BEGIN IMMEDIATE")
        assert is_unreachable(locked.value)

        with pytest.raises(DeskError) as mistake, read_session(engine) as session:
            session.execute(text("SELECT * FROM no_such_table"))
        assert not is_unreachable(mistake.value)
        assert not is_unreachable(DeskError("No ticket 360-9"))
    finally:
        engine.dispose()
        away.dispose()


def test_retries_back_off_with_jitter_up_to_a_cap() -> None:
    first = [retry_wait(1) for _ in range(200)]
    assert all(RETRY_FIRST_S / 2 <= wait <= RETRY_FIRST_S for wait in first)
    assert len(set(first)) > 100  # jittered: workers do not all come back at once
    assert all(RETRY_CAP_S / 2 <= retry_wait(n) <= RETRY_CAP_S for n in (20, 100, 10_000))
    assert max(retry_wait(3) for _ in range(200)) > RETRY_FIRST_S * 2  # it grows
