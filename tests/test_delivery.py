"""Delivery end to end (issue 3), on SQLite and PostgreSQL, against real peers.

aiosmtpd (``smtp_server``) receives every email and the test parses it with the ``email``
package; SMS go to Prism serving Twilio's contract (``twilio_mock``). Covered here:

- the demo loop through the CLI: ``cxdesk demo``, a check-in, a pull, ``cxdesk worker --once``
  (SMS with its Twilio SID, email naming the expert), a resolve, the CSAT email after its
  1-minute delay with a link whose parameters decode back exactly; a custom status sends none;
- faults: the SMTP server down then back; the database lost mid-batch (one message sent and
  not recorded at most, sent again once after the lease); a worker process killed with
  SIGKILL mid-batch and another taking over when the lease runs out; two worker processes
  claiming at once (a barrier at the SMTP server, not a scheduling accident); a slow but
  living worker renewing its lease so that nobody takes it over; bad credentials, retried,
  dead after ``MAX_ATTEMPTS``, listed, and revived by ``cxdesk outbox retry``; mistakes in the
  outbox commands;
- escalation rules run by the worker.

"Exactly once" is what the outbox can honestly promise over SMTP: at-least-once delivery with
a deterministic Message-ID per outbox row, and nothing the server accepted *and the worker
recorded* is ever sent again. Before each DATA, the worker commits the results so far and
marks that message "sending", so a worker killed between the server's 250 reply and the
next commit leaves one message in doubt, sent again when its lease runs out; the kill test
kills while the server is still holding DATA, before it accepted anything. The crash test
with check-ins written meanwhile and SMS is tests/test_delivery_recovery.py.

Worker processes are this file run as a script (``_worker_main`` at the bottom): each builds
its own engine, prints "ready", waits for "go" on stdin, runs one pass and prints its report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.config import load_settings
from cxdesk.engine import outbox as outbox_module
from cxdesk.engine import worker as worker_module
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.mail_batch import message_id_for, read_secret
from cxdesk.engine.outbox import LEASE, MAX_ATTEMPTS, enqueue
from cxdesk.engine.worker import BATCH, DeliveryWorker
from cxdesk.errors import DeskError
from cxdesk.store import tickets as ops
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import get_team, get_user
from cxdesk.store.models import EscalationRule, Event, OutboxMessage, Team, Ticket, utcnow
from tests.cli_helpers import Cli, CliResult, assert_one_error_line, dump_tables
from tests.desk import build_small_desk
from tests.desk import pull as desk_pull
from tests.peers import TWILIO_TEST_ACCOUNT_SID, TWILIO_TEST_FROM, SmtpPeer

REPO_ROOT = Path(__file__).resolve().parents[1]
MAIL_FROM = "Équipe Ask the Experts <desk@example.com>"
SID = re.compile(r"^SM[0-9a-fA-F]{32}$")
CUSTOMER = {
    "first_name": "Zoë & Ann",
    "last_name": "O'Neil",
    "email": "zoe.ann@example.com",
    "phone": "1-415-555-2671",
    "username": "zoe.oneil",
    "product": "Website/App Feedback",
    "notes": "Dashboard filters reset when I share the link",
}
EXPERT, EXPERT_NAME, EXPERT_EMAIL = "ines", "Inès Moreau", "ines@experts.example.com"
CSAT_PARAMETERS = ("SupportRep", "RepEmail", "CustomerName", "Ticket")
"""The seed's CSAT link parameters this test checks (the link may carry more)."""
WAIT_S = 90.0
"""How long a test waits for a worker process to reach a state before it fails."""


# -- fixtures and helpers ----------------------------------------------------------------------


def smtp_variables(peer: SmtpPeer) -> dict[str, str]:
    """The settings a worker needs to send to ``peer``, as environment variables."""
    return {
        "CXDESK_SMTP_HOST": peer.host,
        "CXDESK_SMTP_PORT": str(peer.port),
        "CXDESK_MAIL_FROM": MAIL_FROM,
        "CXDESK_SMTP_TIMEOUT": "30",
    }


@pytest.fixture
def mail_env(monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpPeer) -> SmtpPeer:
    """Workers made in this test (or run by the CLI) send email to ``smtp_server``."""
    for name, value in smtp_variables(smtp_server).items():
        monkeypatch.setenv(name, value)
    return smtp_server


@pytest.fixture
def sms_env(monkeypatch: pytest.MonkeyPatch, twilio_mock: str) -> str:
    """Workers made in this test (or run by the CLI) send SMS to the Twilio contract mock."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TWILIO_TEST_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-token")
    monkeypatch.setenv("CXDESK_SMS_FROM", TWILIO_TEST_FROM)
    monkeypatch.setenv("CXDESK_TWILIO_API_URL", twilio_mock)
    return twilio_mock


def ok(result: CliResult) -> str:
    assert result.exit_code == 0, str(result)
    assert "Traceback" not in result.output, str(result)
    return result.stdout


def outbox_rows(cli: Cli, *options: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(cli("outbox", "list", "--json", *options)))
    return rows


def received_ids(peer: SmtpPeer) -> Counter[str]:
    """How many times the SMTP peer accepted each Message-ID."""
    return Counter(str(item.message["Message-ID"]) for item in peer.received)


def received_with_id(peer: SmtpPeer, message_id: str) -> Any:
    [item] = [m for m in peer.received if str(m.message["Message-ID"]) == message_id]
    return item


def outbox(engine: Engine, *ids: int) -> list[OutboxMessage]:
    """Outbox rows (all, or these ids), in id order, read fresh."""
    with read_session(engine) as session:
        statement = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if ids:
            statement = statement.where(col(OutboxMessage.id).in_(ids))
        return list(session.exec(statement).all())


def ticket_events(engine: Engine, key: str) -> list[Event]:
    with read_session(engine) as session:
        ticket = ops.get_ticket(session, key)
        return list(
            session.exec(
                select(Event).where(Event.ticket_id == ticket.id).order_by(col(Event.id))
            ).all()
        )


def queue_emails(engine: Engine, count: int, sms: int = 0) -> tuple[str, list[int]]:
    """A small desk, one ticket, and ``count`` emails (then ``sms`` SMS, each with a text of its
    own) about it in the outbox; (key, row ids)."""
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        ticket = ops.create_manual_ticket(
            session,
            actor=get_user(session, "admin"),
            customer_email="zoe@example.com",
            customer_name="Zoë",
            team="360",
            comment="Dashboard filters reset",
        )
        rows = [
            enqueue(session, channel="email", to=f"Customer {n} <customer{n}@example.com>",
                    subject=f"Message {n}", body=f"Hello customer {n}", ticket_id=ticket.id)
            for n in range(count)
        ] + [
            enqueue(session, channel="sms", to=f"+1415555{n:04d}", body=f"Text {n}",
                    ticket_id=ticket.id)
            for n in range(sms)
        ]  # fmt: skip
    assert ticket.key is not None
    return ticket.key, [row.id or 0 for row in rows]


def message_id_of(engine: Engine, row: OutboxMessage, mail_from: str = MAIL_FROM) -> str:
    """The signed Message-ID a worker sending from ``mail_from`` gives ``row``."""
    return message_id_for(read_secret(engine), row, mail_from)


def expected_ids(engine: Engine, ids: list[int]) -> Counter[str]:
    """Each row's deterministic Message-ID, once."""
    return Counter({message_id_of(engine, row): 1 for row in outbox(engine, *ids)})


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until true; fail the test (not a timing assertion) if it never is."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {timeout:g} s for {what}")
        time.sleep(0.01)


# -- worker processes --------------------------------------------------------------------------


def start_worker(db_url: str, peer: SmtpPeer) -> subprocess.Popen[str]:
    """A worker process on ``db_url`` sending to ``peer``; returns once it printed "ready"."""
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)), **smtp_variables(peer))
    process = subprocess.Popen(
        [sys.executable, __file__, db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()  # blocks until ready, or "" if it died
    if line != "ready":
        process.kill()
        _out, err = process.communicate()
        pytest.fail(f"worker process did not start (exit {process.returncode}):\n{err}")
    return process


def go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def report_of(process: subprocess.Popen[str]) -> dict[str, int]:
    """The JSON report the worker prints when its pass is done."""
    try:
        out, err = process.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"worker process still running after {WAIT_S:g} s:\n{err}")
    assert process.returncode == 0, err
    report: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return report


# -- the demo loop -----------------------------------------------------------------------------


def check_in_and_pull(
    cli: Cli, answers: dict[str, str], queue: str, expert: str, *options: str
) -> str:
    """Check ``answers`` in (with ``options``, e.g. ``--lang it``) and pull the queue as
    ``expert`` until that ticket comes out."""
    pairs = [arg for name, value in answers.items() for arg in ("--answer", f"{name}={value}")]
    [key] = ok(cli("checkin", "--as", "vera", *pairs, *options)).split()
    for _ in range(20):  # the demo's sample tickets wait in every queue: oldest first
        if ok(cli("ticket", "pull", queue, "--as", expert)).strip() == key:
            return key
    pytest.fail(f"{key} never came out of queue {queue}")


def test_demo_loop_sms_and_email_name_the_expert_then_csat_after_its_delay(
    cli: Cli, engine: Engine, mail_env: SmtpPeer, sms_env: str
) -> None:
    peer = mail_env
    ok(cli("demo"))
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)

    line = ok(cli("worker", "--once"))
    assert "failed 0" in line, line

    rows = [row for row in outbox_rows(cli) if row["ticket"] == key]
    [checked_in] = [row for row in rows if "checked in" in row["body"]]
    assert checked_in["status"] == "stale"  # pulled before the worker ran: moot, not sent
    ours = {row["channel"]: row for row in rows if row is not checked_in}
    assert set(ours) == {"sms", "email"}
    sms, mail = ours["sms"], ours["email"]
    assert (sms["status"], sms["to"], sms["attempts"]) == ("sent", "+14155552671", 1)
    assert SID.match(sms["provider_id"]), sms
    assert EXPERT_NAME in sms["body"] and key in sms["body"]
    assert sms["body"].startswith("Hi Zoë & Ann, ")

    assert (mail["status"], mail["to"], mail["attempts"]) == ("sent", CUSTOMER["email"], 1)
    item = received_with_id(peer, mail["provider_id"])
    message = item.message
    assert item.rcpt_tos == [CUSTOMER["email"]] and item.mail_from == "desk@example.com"
    assert message["From"].addresses[0].display_name == "Équipe Ask the Experts"
    assert message["To"].addresses[0].addr_spec == CUSTOMER["email"]
    assert str(message["Reply-To"]) == EXPERT_EMAIL
    assert str(message["Subject"]) == f"{EXPERT_NAME} is ready to help you ({key})"
    [mail_row] = outbox(engine, mail["id"])
    assert mail["provider_id"] == message_id_of(engine, mail_row)
    assert re.fullmatch(rf"<cx\.\d+\.{mail['id']}\.[\w-]{{22}}@example\.com>", mail["provider_id"])
    assert parsedate_to_datetime(str(message["Date"])).tzinfo is not None
    body = message.get_content()
    assert body.startswith("Hi Zoë & Ann,\n") and f"{EXPERT_NAME} from the Website" in body
    head = item.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head  # UTF-8 names as RFC 2047 words

    log = json.loads(ok(cli("ticket", "show", key, "--json")))["log"]
    sent = [e for e in log if e["kind"] == "message.sent"]
    assert sorted(e["field"] for e in sent) == ["email", "sms"]
    assert any(sms["provider_id"] in (e["detail"] or "") for e in sent)

    # Resolve: the CSAT email is queued with its 1-minute delay.
    ok(cli("ticket", "update", key, "--as", EXPERT, "--status", "resolved", "--comment", "Fixed"))
    [csat] = [
        r
        for r in outbox_rows(cli)
        if r["ticket"] == key and r["channel"] == "email" and r["id"] != mail["id"]
    ]
    assert csat["status"] == "pending" and csat["subject"] == f"How did {EXPERT_NAME} do? ({key})"
    [row] = outbox(engine, csat["id"])
    assert abs(row.due_at - row.created_at - timedelta(minutes=1)) < timedelta(seconds=1)

    worker = DeliveryWorker(engine, load_settings())
    before = worker.run_once(now=row.due_at - timedelta(seconds=1))
    assert before.results == {"sent": 0, "failed": 0}
    [row] = outbox(engine, csat["id"])
    assert (row.status, row.attempts) == ("pending", 0)
    csat_id = message_id_of(engine, row)
    assert csat_id not in received_ids(peer)

    after = worker.run_once(now=row.due_at)
    assert after.results == {"sent": 1, "failed": 0}
    [row] = outbox(engine, csat["id"])
    assert (row.status, row.provider_id) == ("sent", csat_id)
    body = received_with_id(peer, csat_id).message.get_content()
    [link] = re.findall(r"https?://\S+\?SupportRep=\S+", body)
    params = parse_qs(urlsplit(link).query, strict_parsing=True)
    assert all(len(values) == 1 for values in params.values()), params
    assert {name: params.get(name) for name in CSAT_PARAMETERS} == {
        "SupportRep": [EXPERT_NAME],
        "RepEmail": [EXPERT_EMAIL],
        "CustomerName": ["Zoë & Ann O'Neil"],
        "Ticket": [key],
    }
    assert all(count == 1 for count in received_ids(peer).values())


def test_a_custom_status_sends_no_csat(
    cli: Cli, engine: Engine, mail_env: SmtpPeer, sms_env: str
) -> None:
    ok(cli("demo"))
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    queued = [r["id"] for r in outbox_rows(cli) if r["ticket"] == key]
    ok(cli("ticket", "update", key, "--as", EXPERT, "--status", "Follow up later",
           "--comment", "Parked until engineering answers"))  # fmt: skip
    assert [r["id"] for r in outbox_rows(cli) if r["ticket"] == key] == queued
    worker = DeliveryWorker(engine, load_settings())
    worker.run_once(now=utcnow() + timedelta(hours=1))
    assert [r["id"] for r in outbox_rows(cli) if r["ticket"] == key] == queued
    changes = [(e.kind, e.to_value) for e in ticket_events(engine, key)]
    assert ("ticket.status_changed", "Follow up later") in changes
    assert not any("How did" in str(m.message["Subject"]) for m in mail_env.received)


# -- faults ------------------------------------------------------------------------------------


def test_smtp_down_then_back_delivers_every_message_once(
    engine: Engine, mail_env: SmtpPeer
) -> None:
    peer = mail_env
    _key, ids = queue_emails(engine, 12)
    worker = DeliveryWorker(engine, load_settings())

    peer.stop()
    down = worker.run_once()
    assert down.results == {"sent": 0, "failed": 12}
    rows = outbox(engine, *ids)
    assert {(r.status, r.attempts) for r in rows} == {("failed", 1)}
    assert all("unreachable" in (r.last_error or "") for r in rows), rows[0].last_error
    not_yet = min(r.due_at for r in rows) - timedelta(seconds=1)
    assert worker.run_once(now=not_yet).results == {"sent": 0, "failed": 0}  # not due again

    peer.start()
    peer.drop_at = {peer.data_seen + 3}  # and the connection drops during the 3rd message
    back = worker.run_once(now=max(r.due_at for r in rows))
    assert back.results == {"sent": 11, "failed": 1}
    [dropped] = [r for r in outbox(engine, *ids) if r.status == "failed"]
    assert "SMTP connection lost while sending" in (dropped.last_error or "")
    assert message_id_of(engine, dropped) not in received_ids(peer)

    assert worker.run_once(now=dropped.due_at).results == {"sent": 1, "failed": 0}
    assert received_ids(peer) == expected_ids(engine, ids)
    rows = outbox(engine, *ids)
    assert all(r.status == "sent" and r.provider_id == message_id_of(engine, r) for r in rows)
    assert worker.run_once(now=utcnow() + timedelta(days=1)).results == {"sent": 0, "failed": 0}


def test_a_lost_database_stops_the_batch_with_one_message_sent_and_unrecorded_at_most(
    engine: Engine, mail_env: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each send, the results so far and the "sending" mark of the next message are
    committed; once that commit fails, nothing more is sent. The one message sent and not
    recorded is marked: after the lease it is sent again (same Message-ID), once."""
    peer = mail_env
    _key, ids = queue_emails(engine, 12)
    worker = DeliveryWorker(engine, load_settings())
    commits: list[int | None] = []
    real_commit = outbox_module.record_then_start

    def commit_then_lose_the_database(bind: Any, claim: Any, results: Any, sending: Any) -> Any:
        if len(commits) == 3:
            raise DeskError("Database error: server closed the connection unexpectedly")
        commits.append(sending)
        return real_commit(bind, claim, results, sending)

    monkeypatch.setattr(outbox_module, "record_then_start", commit_then_lose_the_database)
    with pytest.raises(DeskError, match="server closed the connection"):
        worker.run_once()
    assert len(received_ids(peer)) == 3  # the 4th send waited for a commit that failed
    rows = outbox(engine, *ids)
    assert [r.status for r in rows] == ["sent"] * 2 + ["pending"] * 10
    unknown = rows[2]  # sent, its result never committed: the one message in doubt
    assert unknown.sending_at is not None and unknown.claimed_until is not None
    assert all(r.sending_at is None and r.claimed_until for r in rows[3:])
    leased = min(r.claimed_until for r in rows if r.claimed_until) - timedelta(seconds=1)
    assert worker.run_once(now=leased).results == {"sent": 0, "failed": 0}  # still claimed

    monkeypatch.setattr(outbox_module, "record_then_start", real_commit)
    later = max(r.claimed_until for r in rows if r.claimed_until) + timedelta(seconds=1)
    assert worker.run_once(now=later).results == {"sent": 10, "failed": 0}
    doubled = received_ids(peer) - expected_ids(engine, ids)
    assert doubled == Counter({message_id_of(engine, unknown): 1})
    assert set(received_ids(peer)) == set(expected_ids(engine, ids))


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(
    db_url: str, engine: Engine, smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = smtp_server
    _key, ids = queue_emails(engine, 20)
    answered = peer.answer_first = 2  # the batch is under way and held at the 3rd message
    process = start_worker(db_url, peer)
    try:
        go(process)
        # The worker commits each result before the next message's DATA, so once the held
        # DATA arrived, every earlier message was accepted and recorded.
        wait_until(
            lambda: peer.data_seen > answered, "the worker to send a message held by the server"
        )
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL
    peer.answer_first = None

    rows = outbox(engine, *ids)
    sent_before = [r for r in rows if r.status == "sent"]
    held = [r for r in rows if r.status == "pending"]
    assert len(sent_before) == len(peer.received) == answered  # each recorded once accepted
    assert held and all(r.claimed_until is not None for r in held)  # still leased to the dead

    for name, value in smtp_variables(peer).items():
        monkeypatch.setenv(name, value)
    takeover = DeliveryWorker(engine, load_settings())
    leased = min(r.claimed_until for r in held if r.claimed_until) - timedelta(seconds=1)
    assert takeover.run_once(now=leased).results == {"sent": 0, "failed": 0}  # still leased
    report = takeover.run_once(now=utcnow() + LEASE + timedelta(seconds=1))
    assert report.results == {"sent": len(held), "failed": 0} and report.lost_leases == 0
    assert received_ids(peer) == expected_ids(engine, ids)
    assert all(r.status == "sent" for r in outbox(engine, *ids))


@pytest.mark.slow
def test_two_workers_at_once_send_no_message_twice(
    db_url: str, engine: Engine, smtp_server: SmtpPeer
) -> None:
    """Both workers claim a batch before either can finish a message: the server holds every
    DATA until two clients are connected (each connects once it claimed), so each worker
    holds rows of its own whatever the scheduling. Nothing is lost or sent twice."""
    peer = smtp_server
    _key, ids = queue_emails(engine, 400)  # 8 batches of 50
    peer.hold_until_clients = 2
    processes = [start_worker(db_url, peer), start_worker(db_url, peer)]
    try:
        for process in processes:
            go(process)
        reports = [report_of(process) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert sum(r["sent"] for r in reports) == 400, reports
    assert all(r["sent"] >= BATCH and r["failed"] == 0 and r["lost"] == 0 for r in reports)
    assert received_ids(peer) == expected_ids(engine, ids)
    rows = outbox(engine, *ids)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


@pytest.mark.slow
def test_a_slow_but_living_worker_renews_its_lease_and_is_never_taken_over(
    db_url: str, engine: Engine, mail_env: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a worker waits on a slow server, its heartbeat renews the lease of the rows it
    holds: past the lease it first took, a second worker takes none of them over."""
    peer = mail_env
    _key, ids = queue_emails(engine, 6)
    monkeypatch.setattr(outbox_module, "LEASE", timedelta(seconds=3))
    monkeypatch.setattr(outbox_module, "RENEW_EVERY", timedelta(seconds=0.2))
    peer.hold_until_clients = 99  # every DATA waits until the test lets go
    first = DeliveryWorker(engine, load_settings())
    reports: list[worker_module.WorkerReport] = []
    thread = threading.Thread(target=lambda: reports.append(first.run_once()))
    thread.start()
    try:
        wait_until(lambda: peer.data_seen == 1, "the first worker's first message")
        # The claim's lease, and the one the first message's "sending" mark renewed: the last.
        taken = max(r.claimed_until for r in outbox(engine, *ids) if r.claimed_until)
        wait_until(
            lambda: all((r.claimed_until or taken) > taken for r in outbox(engine, *ids)),
            "the first worker to renew its lease",
        )
        renewed = min(r.claimed_until or taken for r in outbox(engine, *ids))
        second = DeliveryWorker(make_engine(db_url), load_settings())
        try:  # a time past the first lease, before the renewed one: nothing to take over
            report = second.run_once(now=taken + (renewed - taken) / 2)
        finally:
            second.engine.dispose()
        assert report.results == {"sent": 0, "failed": 0} and report.lost_leases == 0
    finally:
        peer.hold_until_clients = 0
        thread.join()
    assert reports and reports[0].lost_leases == 0, reports
    leftover = DeliveryWorker(engine, load_settings()).run_once()  # if a batch was cut short
    assert reports[0].results["sent"] + leftover.results["sent"] == len(ids)
    assert received_ids(peer) == expected_ids(engine, ids)
    assert {(r.status, r.attempts) for r in outbox(engine, *ids)} == {("sent", 1)}


def test_bad_credentials_fail_clearly_retry_die_and_outbox_retry_revives(
    cli: Cli, engine: Engine, mail_env: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = mail_env
    peer.credentials = ("desk", "right-password")
    monkeypatch.setenv("CXDESK_SMTP_USERNAME", "desk")
    monkeypatch.setenv("CXDESK_SMTP_PASSWORD", "wrong-password")
    key, [message_id] = queue_emails(engine, 1)
    worker = DeliveryWorker(engine, load_settings())

    assert worker.run_once().results == {"sent": 0, "failed": 1}
    [row] = outbox(engine, message_id)
    login_failed = f"SMTP login failed as 'desk' on {peer.host}:{peer.port}: 535"
    assert row.status == "failed" and (row.last_error or "").startswith(login_failed)
    assert row.due_at > utcnow()  # retried later, not now
    [failed] = [e for e in ticket_events(engine, key) if e.kind == "message.failed"]
    assert login_failed in (failed.detail or "") and failed.to_value == row.to_addr
    not_yet = row.due_at - timedelta(seconds=1)
    assert worker.run_once(now=not_yet).results == {"sent": 0, "failed": 0}

    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert worker.run_once(now=row.due_at).results == {"sent": 0, "failed": 1}, attempt
        [row] = outbox(engine, message_id)
        assert row.attempts == attempt
    assert row.status == "dead"
    assert worker.run_once(now=utcnow() + timedelta(days=30)).results["failed"] == 0
    kinds = Counter(e.kind for e in ticket_events(engine, key))
    assert (kinds["message.failed"], kinds["message.dead"]) == (MAX_ATTEMPTS - 1, 1)

    [dead] = outbox_rows(cli, "--status", "dead")
    assert (dead["id"], dead["ticket"], dead["attempts"]) == (message_id, key, MAX_ATTEMPTS)
    assert dead["last_error"].startswith(login_failed) and dead["provider_id"] is None
    assert outbox_rows(cli, "--status", "pending") == []
    assert peer.received == []

    ok(cli("outbox", "retry", str(message_id)))
    [row] = outbox(engine, message_id)
    assert (row.status, row.attempts) == ("pending", 0) and row.due_at <= utcnow()
    monkeypatch.setenv("CXDESK_SMTP_PASSWORD", "right-password")
    assert "sent 1, failed 0" in ok(cli("worker", "--once"))
    assert received_ids(peer) == expected_ids(engine, [message_id])
    assert [r["status"] for r in outbox_rows(cli)] == ["sent"]


def test_outbox_commands_refuse_mistakes_in_one_line(cli: Cli, engine: Engine) -> None:
    _key, [message_id] = queue_emails(engine, 1)
    before = dump_tables(engine, ["outbox", "event"])
    assert_one_error_line(cli("outbox", "list", "--status", "lost"), "status", "pending")
    assert_one_error_line(cli("outbox", "retry", "999"), "No outbox message #999")
    assert_one_error_line(cli("outbox", "retry", str(message_id)), "is pending")
    assert dump_tables(engine, ["outbox", "event"]) == before


# -- escalation rules --------------------------------------------------------------------------


def test_escalation_rules_escalate_waiting_assigned_tickets_only(
    engine: Engine, mail_env: SmtpPeer
) -> None:
    build_small_desk(engine)
    with transaction(engine) as session:
        session.add(EscalationRule(name="360 after 30 min", after_minutes=30,
                                   team_id=get_team(session, "360").id,
                                   recipient_user_id=get_user(session, "kenji").id))  # fmt: skip
        session.add(EscalationRule(name="Stats iQ after 60 min", after_minutes=60,
                                   team_id=get_team(session, "Stats iQ").id,
                                   recipient_team_id=get_team(session, "Solo").id))  # fmt: skip

    def ticket(team: str, comment: str) -> str:
        with unit_of_work(engine) as session:
            created = ops.create_manual_ticket(session, actor=get_user(session, "admin"),
                                               customer_email="zoe@example.com", team=team,
                                               comment=comment)  # fmt: skip
        assert created.key is not None
        return created.key

    def pull(queue: str, expert: str) -> str:
        return desk_pull(engine, expert, queue)

    def update(key: str, expert: str, status: str) -> None:
        with unit_of_work(engine) as session:
            ops.update_ticket(session, actor=get_user(session, expert), key=key,
                              comment="by hand", changes={"status": status})  # fmt: skip

    waiting = ticket("360", "assigned, left open")
    resolved = ticket("360", "assigned, then resolved")
    by_hand = ticket("360", "assigned, escalated by hand")
    reopened = ticket("360", "escalated by hand, then reopened")
    stats = ticket("Stats iQ", "assigned, left open")
    never = ticket("360", "nobody pulled it")
    assert [pull("360", "omar") for _ in range(4)] == [waiting, resolved, by_hand, reopened]
    assert pull("Stats iQ", "kenji") == stats
    update(resolved, "omar", "resolved")
    update(by_hand, "omar", "escalated")
    update(reopened, "omar", "escalated")
    update(reopened, "omar", "open")

    def state(key: str) -> tuple[str, str, str | None]:
        with read_session(engine) as session:
            row = ops.get_ticket(session, key)
            team = ops.tickets_to_dicts(session, [row])[0]
            return row.status, str(team["team"]), team["owner"]  # type: ignore[return-value]

    everyone = [waiting, resolved, by_hand, reopened, stats, never]
    before = {key: state(key) for key in everyone}
    worker = DeliveryWorker(engine, load_settings())
    start = utcnow()
    assert worker.run_once(now=start + timedelta(minutes=29)).escalated == 0
    assert worker.run_once(now=start + timedelta(minutes=31)).escalated == 1
    assert state(waiting) == ("escalated", "360", "omar")  # to a user: kenji is told
    assert worker.run_once(now=start + timedelta(minutes=61)).escalated == 1
    assert state(stats) == ("escalated", "Solo", None)  # to a team: it waits in Solo's queue
    assert worker.run_once(now=start + timedelta(days=1)).escalated == 0  # never twice
    for key in (resolved, by_hand, reopened, never):
        assert state(key) == before[key], key

    with read_session(engine) as session:
        escalations = session.exec(
            select(Ticket.key, Event.actor_id)
            .join(Ticket, col(Ticket.id) == col(Event.ticket_id))
            .where(Event.kind == "ticket.escalated", col(Event.actor_id).is_(None))
            .order_by(col(Event.id))
        ).all()
    assert [k for k, _actor in escalations] == [waiting, stats]
    told = sorted(
        (item.rcpt_tos[0], str(item.message["Subject"]).split(":")[0]) for item in mail_env.received
    )
    assert told == [("kenji@example.com", "Escalated to you")] * 2


def test_two_rules_matching_one_ticket_escalate_it_once(engine: Engine) -> None:
    build_small_desk(engine)
    with transaction(engine) as session:
        session.add(EscalationRule(name="fast", after_minutes=1,
                                   recipient_user_id=get_user(session, "kenji").id))  # fmt: skip
    with unit_of_work(engine) as session:
        ops.create_manual_ticket(session, actor=get_user(session, "admin"),
                                 customer_email="zoe@example.com", team="Solo",
                                 comment="Solo has one member: owned at once")  # fmt: skip
    with transaction(engine) as session:  # a second enabled rule matching the same ticket
        session.add(EscalationRule(name="also fast", after_minutes=1,
                                   recipient_user_id=get_user(session, "maya").id))  # fmt: skip
    worker = DeliveryWorker(engine, load_settings())
    assert worker.run_once(now=utcnow() + timedelta(minutes=2)).escalated == 1
    with read_session(engine) as session:
        escalated = session.exec(select(Event.id).where(Event.kind == "ticket.escalated")).all()
        recipients = session.exec(select(OutboxMessage.to_addr)).all()
    assert len(escalated) == 1
    assert recipients == ["kenji@example.com"]


# -- the worker process ------------------------------------------------------------------------


def _worker_main(db_url: str) -> None:
    """One worker: its own engine, settings from the environment; one pass after "go"."""
    worker = DeliveryWorker(make_engine(db_url), load_settings())
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    report = worker.run_once()
    print(json.dumps({**report.results, "lost": report.lost_leases}), flush=True)


if __name__ == "__main__":
    _worker_main(*sys.argv[1:])


def test_the_workers_pass_moves_the_wal_into_the_database_file(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SQLite: a writer checkpoints by itself only at a high threshold (so a pull rarely pays
    for one); the worker's pass does it. Seen from outside: a copy of the database file
    alone, without its WAL, holds a write once the worker has passed, and not before."""
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    engine = make_engine(sqlite_url)

    def teams_in_the_file_alone() -> list[str]:
        copy = tmp_path / "file-alone.db"
        copy.write_bytes(path.read_bytes())
        with closing(sqlite3.connect(copy)) as connection:
            return [name for (name,) in connection.execute("SELECT name FROM team")]

    try:
        with transaction(engine) as session:
            session.add(Team(name="Checkpointed"))
        assert teams_in_the_file_alone() == []
        DeliveryWorker(engine, load_settings()).run_once()
        assert teams_in_the_file_alone() == ["Checkpointed"]
    finally:
        engine.dispose()
