"""Deliverers outlive database outages (issue 13, item 2), with real parts.

- ``cxdesk worker`` (the installed script, a real process) on a PostgreSQL cluster of the
  test's own: the server stopped, then started again on the same port; the worker says one
  line, keeps running and delivers a message queued after the restart to aiosmtpd.
- The same on SQLite with another connection holding the write lock (``BEGIN IMMEDIATE``)
  past the busy timeout; the message is queued in that very transaction.
- SIGTERM mid-batch: the worker finishes the message in flight and starts no other one (nor
  an SMS batch); it exits 0, each message it sent recorded, none left claimed.
- What counts as "unreachable" (real driver errors) and the backoff's bounds.

The desk app through the same outages: ``tests/test_tui_outages.py``. Every wait is on what
the test checks (a line printed, a message received, the process gone), never a sleep. The
outages are short here; the logic is the same for a long one.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select

from cxdesk.engine.outbox import enqueue
from cxdesk.engine.worker import RETRY_CAP_S, RETRY_FIRST_S, retry_wait
from cxdesk.errors import DESK_UNREACHABLE, DeskError
from cxdesk.store.db import is_unreachable, make_engine, read_session, transaction
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import OutboxMessage, utcnow
from tests.cli_helpers import console_script
from tests.conftest import PgCluster
from tests.peers import SmtpPeer, free_port
from tests.test_delivery import wait_until
from tests.test_delivery_recovery import twilio_variables_for
from tests.twilio_recorder import TwilioRecorder


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
def worker_process(
    db_url: str, peer: SmtpPeer, extra_env: dict[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """``cxdesk worker`` on ``db_url`` sending to ``peer`` (and ``extra_env``), once it said it
    runs; killed at the end if the test left it running."""
    env = dict(
        os.environ,
        CXDESK_DATABASE_URL=db_url,
        CXDESK_SMTP_HOST=peer.host,
        CXDESK_SMTP_PORT=str(peer.port),
        CXDESK_MAIL_FROM="Ask the Experts <desk@example.com>",
        COLUMNS="200",
        **(extra_env or {}),
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
def test_sigterm_mid_batch_stops_a_worker_after_the_message_in_flight(
    sqlite_url: str, smtp_server: SmtpPeer, twilio_recorder: TwilioRecorder
) -> None:
    """SIGTERM while the SMTP server holds the 3rd email's DATA: that email goes out and is
    recorded, no other one starts, the batch's untried rows are given back (no attempt
    counted) and no SMS batch is claimed (an SMS in doubt is not even looked up)."""
    engine = make_engine(sqlite_url)
    try:
        with transaction(engine) as session:
            for n in range(60):  # more than one batch
                enqueue(session, channel="email", to=f"c{n}@example.com", subject=f"#{n}",
                        body="Hello")  # fmt: skip
            texts = [
                enqueue(session, channel="sms", to=f"+1415555{n:04d}", body=f"Text {n}")
                for n in range(3)
            ]
            texts[0].sending_at = utcnow()  # its outcome unknown: it would be looked up first
        answered = smtp_server.answer_first = 2  # the 3rd DATA is held until the test lets go
        twilio = twilio_variables_for(twilio_recorder.url)
        with worker_process(sqlite_url, smtp_server, twilio) as worker:
            wait_until(lambda: smtp_server.data_seen > answered, "the 3rd email's DATA")
            worker.process.send_signal(signal.SIGTERM)
            wait_until(lambda: worker.lines_with("Stopping after"), "the worker to hear SIGTERM")
            smtp_server.answer_first = None
            wait_until(lambda: worker.process.poll() is not None, "the worker to exit")
            assert worker.process.returncode == 0, str(worker)
            assert worker.lines_with("Worker stopped."), str(worker)
        assert subjects(smtp_server) == ["#0", "#1", "#2"]  # nothing started after the signal
        assert (twilio_recorder.bodies(), twilio_recorder.lists) == ([], 0)
        rows = outbox(engine)
        assert [row.status for row in rows[:3]] == ["sent"] * 3  # each message sent recorded
        # The rest wait unclaimed, their claim not counted: another worker takes them at once.
        assert all(
            row.status == "pending" and row.claimed_until is None and row.attempts == 0
            for row in rows[3:]
        ), (str(worker), [(r.subject, r.status, r.claimed_until, r.attempts) for r in rows])
    finally:
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


def test_a_sqlite_connection_found_closed_at_begin_is_dropped_from_the_pool(
    sqlite_url: str,
) -> None:
    """BEGIN on a driver connection closed under the pool: SQLAlchemy's error, the
    connection invalidated (the desk unreachable for now, not a mistake), and the next
    transaction runs on a new connection."""
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            closed = connection.connection.dbapi_connection
        assert closed is not None
        closed.close()
        with pytest.raises(DBAPIError) as raised, transaction(engine) as session:
            session.execute(text("SELECT 1"))
        assert raised.value.connection_invalidated and is_unreachable(raised.value)
        with transaction(engine) as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
            assert session.connection().connection.dbapi_connection is not closed
    finally:
        engine.dispose()


def test_retries_back_off_with_jitter_up_to_a_cap() -> None:
    first = [retry_wait(1) for _ in range(200)]
    assert all(RETRY_FIRST_S / 2 <= wait <= RETRY_FIRST_S for wait in first)
    assert len(set(first)) > 100  # jittered: workers do not all come back at once
    assert all(RETRY_CAP_S / 2 <= retry_wait(n) <= RETRY_CAP_S for n in (20, 100, 10_000))
    assert max(retry_wait(3) for _ in range(200)) > RETRY_FIRST_S * 2  # it grows
