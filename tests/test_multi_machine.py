"""A desk on several machines: two terminals and two workers sharing one PostgreSQL database.

PostgreSQL only (``pg_url``): a desk shared by machines needs a database server. Each
"machine" has its own engine: terminals A and B are two ``CxDeskApp``s driven by Pilot in one
event loop, each on its own engine (every statement either runs is checked to stay off the
event loop's thread, as in ``tests/test_tui.py``); the workers are two ``cxdesk worker``
processes set up only through the environment (``CXDESK_DATABASE_URL``, the channel
settings). Terminal A delivers too (the app's embedded worker), terminal B does not
(``deliver`` off, as ``CXDESK_DELIVER=0`` would make it): three deliverers race for every
message.

Checked: a pull on A shows on B's queues (the waiting count drops) within ``SHOWN_WITHIN``
seconds, a bound generous enough for a busy machine around the desk's "about a second"
(B polls the change token every second, as ``cxdesk run`` does); a pull on B takes the other
ticket; and every alert (each pull's SMS and email, the CSAT email after the resolve: due at
once here, so all three deliverers race for it the moment the resolve commits) is claimed
once (outbox attempts 1), recorded once (one ``message.sent`` event) and, for email, accepted
by the SMTP server once (counted by Message-ID, after every deliverer has stopped).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import make_engine, read_session
from cxdesk.store.directory import get_user
from cxdesk.store.models import Event, OutboxMessage, Ticket
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk
from tests.peers import TWILIO_TEST_ACCOUNT_SID, TWILIO_TEST_FROM, SmtpPeer
from tests.test_delivery import message_id_of
from tests.test_tui import (
    SIZE,
    add_alert_workflows,
    log_in,
    queues_loaded,
    type_text,
    wait_until,
)

MAIL_FROM = "Ask the Experts <desk@example.com>"
SHOWN_WITHIN = 3.0
"""Seconds within which a pull on one terminal must show on another's queues."""
WAIT_S = 60.0
"""How long the test waits for deliveries and processes before it fails."""
CUSTOMERS = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
     "phone": "+1 415 555 0100", "product": "360"},
    {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
     "phone": "+1 415 555 0101", "product": "360"},
]  # fmt: skip


def channel_variables(peer: SmtpPeer, twilio_url: str) -> dict[str, str]:
    """What a machine that delivers needs: the SMTP server and the Twilio account."""
    return {
        "CXDESK_SMTP_HOST": peer.host,
        "CXDESK_SMTP_PORT": str(peer.port),
        "CXDESK_MAIL_FROM": MAIL_FROM,
        "TWILIO_ACCOUNT_SID": TWILIO_TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "test-token",
        "CXDESK_SMS_FROM": TWILIO_TEST_FROM,
        "CXDESK_TWILIO_API_URL": twilio_url,
    }


@contextmanager
def worker_processes(count: int, env: dict[str, str], logs: Path) -> Iterator[None]:
    """``count`` ``cxdesk worker`` processes, each started and saying it runs; stopped with
    Ctrl+C (SIGINT) at the end, and failed if one died or printed a traceback."""
    command = [sys.executable, "-c", "from cxdesk.cli.main import main; main()", "worker"]
    processes: list[tuple[subprocess.Popen[str], Path]] = []
    try:
        for n in range(count):
            log = logs / f"worker-{n}.log"
            with log.open("w") as err:
                process = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=err, text=True, env=env
                )
            processes.append((process, log))
        for process, log in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # "" if it died
            assert line.startswith("Worker running"), f"{line!r}\n{log.read_text()}"
        yield
        for process, log in processes:
            assert process.poll() is None, f"a worker stopped early:\n{log.read_text()}"
    finally:
        for process, _log in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, log in processes:
            try:
                process.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                pytest.fail(f"a worker did not stop on Ctrl+C:\n{log.read_text()}")
    for _process, log in processes:
        assert "Traceback" not in log.read_text(), log.read_text()


def machine_engine(url: str, on_loop: list[str]) -> Engine:
    """A terminal's own engine; records any statement run on the event loop's thread."""
    engine = make_engine(url)

    @event.listens_for(engine, "before_cursor_execute")
    def _not_on_the_loop(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            on_loop.append(statement)

    return engine


def waiting_in_360(app: CxDeskApp) -> str:
    return str(app.screen.query_one("#queues", DataTable).get_row("360")[2])  # Waiting


async def on_the_queues(app: CxDeskApp, pilot: Pilot[None]) -> None:
    await log_in(app, pilot)
    await queues_loaded(app, pilot)
    await wait_until(pilot, lambda: waiting_in_360(app) == "2", "2 waiting in 360")


async def opened_ticket(app: CxDeskApp, pilot: Pilot[None]) -> TicketScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the pulled ticket")
    screen = app.screen
    assert isinstance(screen, TicketScreen)
    return screen


def outbox_rows(engine: Engine) -> list[OutboxMessage]:
    with read_session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def all_sent(engine: Engine, count: int) -> bool:
    rows = outbox_rows(engine)
    return len(rows) == count and all(row.status == "sent" for row in rows)


@pytest.mark.slow
def test_two_terminals_and_two_workers_share_one_postgresql_desk(
    pg_url: str,
    smtp_server: SmtpPeer,
    twilio_mock: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = make_engine(pg_url)  # the test's own view of the database
    try:
        build_small_desk(engine)
        add_alert_workflows(engine)  # SMS + email on a pull, CSAT email on a resolve
        for answers in CUSTOMERS:
            with unit_of_work(engine) as session:
                vera = get_user(session, "vera")
                submit_response(session, actor=vera, survey_name="checkin", answers=answers)
        channels = channel_variables(smtp_server, twilio_mock)
        for name, value in channels.items():  # terminal A's embedded worker reads these too
            monkeypatch.setenv(name, value)
        worker_env = dict(os.environ, CXDESK_DATABASE_URL=pg_url)
        on_loop: list[str] = []
        with ExitStack() as stack:
            stack.enter_context(worker_processes(2, worker_env, tmp_path))
            engine_a = machine_engine(pg_url, on_loop)
            engine_b = machine_engine(pg_url, on_loop)
            stack.callback(engine_a.dispose)
            stack.callback(engine_b.dispose)
            app_a = create_app(engine_a, user="maya", settings=Settings(), deliver=True)
            app_b = create_app(engine_b, user="omar", settings=Settings(), deliver=False)
            asyncio.run(work_the_desk(engine, app_a, app_b))
        # Every deliverer has stopped: whatever the SMTP server got, it got from them all.
        assert on_loop == [], "database calls on the event loop's thread"
        check_each_alert_sent_once(engine, smtp_server)
    finally:
        engine.dispose()


async def work_the_desk(engine: Engine, app_a: CxDeskApp, app_b: CxDeskApp) -> None:
    """Maya pulls on A (B's count drops), Omar pulls on B, Maya resolves hers on A."""
    async with app_a.run_test(size=SIZE) as pilot_a, app_b.run_test(size=SIZE) as pilot_b:
        await on_the_queues(app_a, pilot_a)
        await on_the_queues(app_b, pilot_b)

        pressed_at = time.monotonic()  # the time to show includes the pull itself
        await pilot_a.press("n")
        while waiting_in_360(app_b) != "1" and time.monotonic() - pressed_at < SHOWN_WITHIN:
            await pilot_b.pause(0.02)
        assert waiting_in_360(app_b) == "1", f"B did not show A's pull in {SHOWN_WITHIN:g} s"
        maya_ticket = await opened_ticket(app_a, pilot_a)

        await pilot_b.press("n")
        omar_ticket = await opened_ticket(app_b, pilot_b)
        assert omar_ticket.key != maya_ticket.key

        await pilot_a.press("r")
        await wait_until(pilot_a, lambda: isinstance(app_a.focused, Input), "the resolve dialog")
        await type_text(pilot_a, "Fixed")
        await pilot_a.press("enter")
        await wait_until(pilot_a, lambda: app_a.screen is maya_ticket, "the dialog to close")
        await wait_until(
            pilot_a, lambda: all_sent(engine, 5), "2 SMS and 3 emails sent", timeout=WAIT_S
        )
    with read_session(engine) as session:
        maya, omar = get_user(session, "maya"), get_user(session, "omar")
        owned = {t.key: (t.owner_id, t.status) for t in session.exec(select(Ticket)).all()}
    assert owned == {maya_ticket.key: (maya.id, "resolved"), omar_ticket.key: (omar.id, "open")}


def check_each_alert_sent_once(engine: Engine, peer: SmtpPeer) -> None:
    rows = outbox_rows(engine)
    assert sorted(r.channel for r in rows) == ["email", "email", "email", "sms", "sms"]
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}  # each claimed once
    with read_session(engine) as session:
        sent_events = session.exec(select(Event).where(Event.kind == "message.sent")).all()
    recorded = Counter(
        int(match.group(1))
        for e in sent_events
        if (match := re.match(r"outbox #(\d+)\b", e.detail or ""))
    )
    assert recorded == Counter({r.id: 1 for r in rows})
    received = Counter(str(item.message["Message-ID"]) for item in peer.received)
    emails = [r for r in rows if r.channel == "email"]
    assert received == Counter({message_id_of(engine, r, MAIL_FROM): 1 for r in emails})
    subjects = sorted(str(item.message["Subject"]) for item in peer.received)
    assert subjects == ["How did we do?", "Maya is ready", "Omar is ready"]
