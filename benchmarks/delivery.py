"""Benchmark: emails delivered through the outbox against a bare aiosmtplib loop, same run.

Run ``python -m benchmarks.delivery`` with optional ``--messages N`` (default 2,000),
``--repeats N`` (default 5: rounds in which the contenders alternate, which one goes first
turning round by round; the figure's ratio is the median of the per-round ratios, so a burst
of load on a shared machine falls on both of a pair) and ``--pg URL`` (also measure on
PostgreSQL: a URL of a role that may create databases; a scratch database is made and
dropped). Exit status 1 only if a message was lost or sent twice, never because of timing.

Both contenders send the same messages (a UTF-8 subject, a ~400-character body, one recipient
each) to one local aiosmtpd server, run in its own process so its work does not compete with
the sender for the GIL; the server counts what it accepted by Message-ID:

- cxdesk: N rows queued in the outbox (``outbox.enqueue``, not timed), then
  ``DeliveryWorker.run_once()`` until nothing is due (timed): claims in batches of
  ``worker.BATCH``, one SMTP connection per batch, and before each message's DATA one
  transaction committing the result of the one before (status, Message-ID and a
  ``message.sent`` event on the ticket) and this one's "sending" mark, on a thread while
  MAIL FROM and RCPT TO go out (at most one message sent and unrecorded, ever);
- baseline: one ``aiosmtplib.SMTP`` connection and a loop building each ``EmailMessage`` with
  the standard library and calling ``send_message``: no database at all.

Figures per database: throughput (messages/s over the wall time of the sending, medians of
the rounds; target: the median of the per-round ratios >= 60% of the baseline), and messages
lost or doubled over all rounds (the server's count by Message-ID; both 0).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from email.message import EmailMessage
from email.utils import formatdate
from multiprocessing.connection import Connection
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, func
from sqlmodel import col, select

from benchmarks.common import format_table, paired_figure, scratch_pg_database
from cxdesk.config import Settings
from cxdesk.engine.outbox import enqueue
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import OutboxMessage

MESSAGES = 2_000
REPEATS = 5
TARGET_THROUGHPUT_RATIO = 0.6
MAIL_FROM = "Équipe Ask the Experts <desk@example.com>"
SUBJECT = "Inès Moreau is ready to help you (EXP-{n})"
BODY = (
    "Hi Zoë,\n\n"
    "Inès Moreau from the Website/App Feedback team is ready for you at the Ask the Experts "
    "desk.\nPlease come to the desk now; your ticket is EXP-{n}.\n\n"
    "While you wait: https://survey.example.com/jfe/form/SV_help?Ticket=EXP-{n}&Rep=In%C3%A8s"
    "%20Moreau\n\nThe Ask the Experts team\n"
)
ENQUEUE_CHUNK = 500
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def _recipient(n: int) -> str:
    return f"Customer {n} <customer{n}@example.com>"


# -- the SMTP server, in its own process ------------------------------------------------------


class _CountingHandler:
    """Accepts every message and counts it by Message-ID (no parsing beyond that header)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        with self.lock:
            self.counts[found.group(1).decode() if found else "(none)"] += 1
        return "250 OK"


def _serve(port: int, commands: Connection) -> None:
    """Run the server until told "stop"; "counts" answers what arrived since the last ask."""
    handler = _CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        commands.send("ready")
        while (command := commands.recv()) != "stop":
            assert command == "counts"
            with handler.lock:
                counts, handler.counts = handler.counts, Counter()
            commands.send(dict(counts))
    finally:
        controller.stop()


@contextmanager
def _smtp_server() -> Iterator[tuple[int, Callable[[], Counter[str]]]]:
    """(port, take_counts) of a counting aiosmtpd server running in a child process."""
    with socket.socket() as probe:  # aiosmtpd cannot bind port 0 itself
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, theirs))
    process.start()
    try:
        if not ours.poll(60) or ours.recv() != "ready":
            raise RuntimeError("the benchmark's SMTP server did not start")

        def take_counts() -> Counter[str]:
            ours.send("counts")
            return Counter(ours.recv())

        yield port, take_counts
    finally:
        if process.is_alive():
            ours.send("stop")
            process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


# -- the contenders ----------------------------------------------------------------------------


async def _bare_loop(port: int, messages: int, run_id: str) -> list[str]:
    """One connection, one standard-library message after another; the Message-IDs sent."""
    sent: list[str] = []
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await smtp.connect()
    try:
        for n in range(messages):
            message = EmailMessage()
            message["From"] = MAIL_FROM
            message["To"] = _recipient(n)
            message["Subject"] = SUBJECT.format(n=n)
            message["Date"] = formatdate(localtime=False, usegmt=True)
            message["Message-ID"] = f"<bare.{run_id}.{n}@example.com>"
            message.set_content(BODY.format(n=n), cte="quoted-printable")
            await smtp.send_message(message)
            sent.append(str(message["Message-ID"]))
    finally:
        await smtp.quit()
    return sent


def _baseline(port: int, messages: int) -> tuple[float, list[str]]:
    """Seconds to send every message with the bare loop, and their Message-IDs."""
    started = time.perf_counter()
    sent = asyncio.run(_bare_loop(port, messages, uuid.uuid4().hex[:8]))
    return time.perf_counter() - started, sent


def _queue_rows(engine: Engine, messages: int) -> None:
    for start in range(0, messages, ENQUEUE_CHUNK):
        with transaction(engine) as session:
            for n in range(start, min(start + ENQUEUE_CHUNK, messages)):
                enqueue(
                    session,
                    channel="email",
                    to=_recipient(n),
                    subject=SUBJECT.format(n=n),
                    body=BODY.format(n=n),
                )


def _cxdesk(engine: Engine, port: int, messages: int) -> tuple[float, list[str], int]:
    """Queue ``messages`` rows, then time worker passes until none is due; the seconds, the
    Message-IDs recorded for these rows, and how many of them are not ``sent``."""
    with read_session(engine) as session:
        before = session.exec(select(func.max(OutboxMessage.id))).one() or 0
    _queue_rows(engine, messages)
    smtp = {"host": "127.0.0.1", "port": port, "mail_from": MAIL_FROM, "timeout": 30}
    worker = DeliveryWorker(engine, Settings(extra={"smtp": smtp}))
    started = time.perf_counter()
    while sum(worker.run_once().results.values()):
        pass
    seconds = time.perf_counter() - started
    with read_session(engine) as session:
        rows = session.exec(
            select(OutboxMessage.status, OutboxMessage.provider_id).where(
                col(OutboxMessage.id) > before
            )
        ).all()
    recorded = [provider_id for status, provider_id in rows if status == "sent" and provider_id]
    return seconds, recorded, sum(1 for status, _id in rows if status != "sent")


def _misdelivered(expected: list[str], received: Counter[str]) -> tuple[int, int]:
    """(lost, doubled): expected ids the server never got, and extra copies it got."""
    lost = sum(1 for message_id in expected if not received[message_id])
    doubled = sum(count - 1 for count in received.values() if count > 1)
    doubled += sum(count for message_id, count in received.items() if message_id not in expected)
    return lost, doubled


def _figures(
    database: str, rounds: list[tuple[float, float]], cxdesk: list[int], baseline: list[int]
) -> list[dict[str, Any]]:
    """``rounds``: (cxdesk's, the baseline's) messages/s per round; ``cxdesk``/``baseline``:
    [lost, doubled] over every round."""
    prefix = f"delivery.{database}"
    return [
        paired_figure(
            f"{prefix}.throughput",
            rounds,
            unit="messages/s",
            target_ratio=TARGET_THROUGHPUT_RATIO,
        ),
        {
            "name": f"{prefix}.lost",
            "value": cxdesk[0],
            "baseline": baseline[0],
            "ratio": None,
            "unit": "messages",
            "target": "== 0",
            "met": cxdesk[0] == 0,
        },
        {
            "name": f"{prefix}.doubled",
            "value": cxdesk[1],
            "baseline": baseline[1],
            "ratio": None,
            "unit": "messages",
            "target": "== 0",
            "met": cxdesk[1] == 0,
        },
    ]


def run(
    *,
    messages: int = MESSAGES,
    repeats: int = REPEATS,
    pg_url: str | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """Deliver ``messages`` emails both ways on SQLite (and PostgreSQL if ``pg_url``).

    ``repeats`` rounds of both contenders, the first of each round alternating; the ratio is
    the median of the per-round ratios, so a burst of load from other processes on the machine
    falls on both of a pair, not on one. Lost and doubled messages are summed over every
    round.
    """
    figures: list[dict[str, Any]] = []
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="cxdesk-bench-delivery-"))
        port, take_counts = stack.enter_context(_smtp_server())
        databases = [("sqlite", f"sqlite:///{folder}/desk.db")]
        if pg_url:
            databases.append(("postgresql", stack.enter_context(scratch_pg_database(pg_url))))
        for database, url in databases:
            engine = make_engine(url)
            upgrade(engine)
            ours, theirs = [0, 0], [0, 0]  # lost, doubled
            rounds: list[tuple[float, float]] = []
            for round_number in range(1, repeats + 1):
                rate: dict[str, float] = {}
                order = ("bare", "cxdesk") if round_number % 2 else ("cxdesk", "bare")
                for contender in order:
                    step = f"{database} {round_number}/{repeats}"
                    if contender == "bare":
                        log(f"{step}: bare aiosmtplib loop, {messages} ...")
                        seconds, sent = _baseline(port, messages)
                        _add_wrong(theirs, _misdelivered(sent, take_counts()))
                    else:
                        log(f"{step}: cxdesk outbox and worker ...")
                        seconds, recorded, unsent = _cxdesk(engine, port, messages)
                        lost, doubled = _misdelivered(recorded, take_counts())
                        _add_wrong(ours, (lost + unsent, doubled))
                    rate[contender] = messages / seconds
                rounds.append((rate["cxdesk"], rate["bare"]))
            engine.dispose()
            figures += _figures(database, rounds, ours, theirs)
    return figures


def _add_wrong(totals: list[int], wrong: tuple[int, int]) -> None:
    totals[0] += wrong[0]
    totals[1] += wrong[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=MESSAGES, help="emails to send")
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help="rounds; the median ratio counts"
    )
    parser.add_argument("--pg", metavar="URL", help="also run on this PostgreSQL server")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.repeats < 1:
        parser.error("--messages and --repeats must be at least 1")
    figures = run(messages=args.messages, repeats=args.repeats, pg_url=args.pg)
    print(f"delivery: {args.messages} emails to a local aiosmtpd, median of {args.repeats} rounds")
    print(format_table(figures))
    wrong = [
        f
        for f in figures
        if f["name"].endswith((".lost", ".doubled")) and (f["value"] or f["baseline"])
    ]
    for figure in wrong:
        print(f"FAIL: {figure['name']}: cxdesk {figure['value']}, baseline {figure['baseline']}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
