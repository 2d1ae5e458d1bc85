"""Replying to the customer from a ticket (issue 14, items 1-2), on SQLite and PostgreSQL.

Store level: the reply, its files, its outbox row (subject with the key, thread so far), the
first response time and its log line are written in one transaction, or nothing is; every
refused case (no address, empty message, files by SMS, a number that opted out, not on the
team...) is one ``Error:`` line from ``cxdesk ticket reply`` and writes nothing. Through real
peers: ``cxdesk worker --once`` delivers the reply to aiosmtpd with a signed Message-ID,
In-Reply-To/References, Reply-To, X-Loop, its files, and no Auto-Submitted (while the demo's
workflow email carries it); an SMS reply goes to the Twilio contract mock. A reply does not go
stale when its ticket is resolved at once, only past its 7-day window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.config import load_settings
from cxdesk.engine import mail_batch
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.mail_batch import read_secret
from cxdesk.engine.outbox import enqueue
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.store import inbound, message_ids, replies
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import (
    AddressFlag,
    Attachment,
    Comment,
    CommentKind,
    Event,
    OutboxMessage,
    Ticket,
    utcnow,
)
from cxdesk.store.tickets import NewAttachment, TicketDraft
from tests.cli_helpers import Cli, assert_one_error_line, dump_tables
from tests.desk import build_small_desk
from tests.peers import SmtpPeer
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    CUSTOMER,
    EXPERT,
    SID,
    check_in_and_pull,
    mail_env,
    ok,
    outbox,
    sms_env,
    smtp_variables,
)

REPLY_TO = "Ask the Experts <answers@example.com>"
WRITTEN = ["comment", "attachment", "outbox", "event", "ticket"]
"""The tables a reply writes to: unchanged after a refused one."""
CSV = b"question,weight\nQ1,0.5\n"


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def desk(engine: Engine) -> Iterator[Engine]:
    """The small desk with two tickets of team 360: one with an email (``EMAIL_KEY``), one with
    only a phone number (``PHONE_KEY``)."""
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        admin = get_user(session, "admin")
        ops.create_manual_ticket(
            session,
            actor=admin,
            customer_email="zoe@example.com",
            customer_name="Zoë O'Neil",
            team="360",
            comment="Dashboard filters reset",
            title="Filters reset",
        )
        phone_only = TicketDraft(
            title="Call me", team="360", customer_name="Sam", customer_phone="+14155552671"
        )
        ops.create_ticket(session, actor=admin, draft=phone_only)
    yield engine


EMAIL_KEY, PHONE_KEY = "EXP-1", "EXP-2"


def reply(engine: Engine, key: str, body: str, *, as_user: str = "maya", **options: object) -> int:
    """``reply_to_customer`` in its own transaction; the comment's id."""
    with unit_of_work(engine) as session:
        comment = replies.reply_to_customer(
            session,
            actor=get_user(session, as_user),
            key=key,
            body=body,
            **options,  # type: ignore[arg-type]
        )
    assert comment.id is not None
    return comment.id


def row_of(engine: Engine, comment_id: int) -> OutboxMessage:
    with read_session(engine) as session:
        return session.exec(
            select(OutboxMessage).where(OutboxMessage.comment_id == comment_id)
        ).one()


def ticket(engine: Engine, key: str) -> Ticket:
    with read_session(engine) as session:
        return ops.get_ticket(session, key)


def receive(
    engine: Engine, key: str, message_id: str, subject: str = "", *, may_answer: bool = True
) -> None:
    """A customer's email recorded on ticket ``key`` (what the inbound doors write)."""
    with transaction(engine) as session:
        assert inbound.record_received(
            session, message_id=message_id, channel="email", outcome="added",
            sender="zoe@example.com", subject=subject, ticket_id=ops.get_ticket(session, key).id,
            may_answer=may_answer,
        )  # fmt: skip


# -- the store ---------------------------------------------------------------------------------


def test_a_reply_is_its_comment_its_outbox_row_its_first_response_and_its_log_line(
    desk: Engine,
) -> None:
    before = utcnow()
    comment_id = reply(desk, EMAIL_KEY, "  Filters now persist.  ",
                       attachments=[NewAttachment("weights.csv", CSV)])  # fmt: skip

    with read_session(desk) as session:
        comment = session.get(Comment, comment_id)
        assert comment is not None
        assert (comment.kind, comment.channel, comment.body) == (
            CommentKind.reply,
            "email",
            "Filters now persist.",
        )
        [file] = session.exec(select(Attachment).where(Attachment.comment_id == comment_id)).all()
        assert (file.filename, file.content_type, file.content) == ("weights.csv", "text/csv", CSV)
        events = session.exec(
            select(Event).where(Event.ticket_id == comment.ticket_id).order_by(col(Event.id))
        ).all()
    row = row_of(desk, comment_id)
    assert (row.channel, row.to_addr, row.status) == (
        "email",
        "Zoë O'Neil <zoe@example.com>",
        "pending",
    )
    assert row.subject == f"Re: [{EMAIL_KEY}] Filters reset"
    assert row.body == "Filters now persist." and row.thread_refs is None
    assert row.valid_until is not None
    assert row.valid_until - row.due_at == replies.REPLY_VALID_FOR
    replied = [e for e in events if e.kind == "ticket.replied"]
    assert [(e.field_name, e.detail) for e in replied] == [
        ("email", f"outbox #{row.id}, weights.csv")
    ]
    assert not [e for e in events if e.kind == "ticket.commented"]
    first = ticket(desk, EMAIL_KEY).first_response_at
    assert first is not None and first >= before

    reply(desk, EMAIL_KEY, "And one more thing")
    assert ticket(desk, EMAIL_KEY).first_response_at == first  # the first one stays


def test_a_reply_fails_whole_when_its_last_step_fails(
    desk: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dump_tables(desk, WRITTEN)

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the log line could not be written")

    monkeypatch.setattr(replies, "record_event", refuse)
    with pytest.raises(RuntimeError):
        reply(desk, EMAIL_KEY, "Filters now persist.",
              attachments=[NewAttachment("weights.csv", CSV)])  # fmt: skip
    assert dump_tables(desk, WRITTEN) == before


def test_the_channel_is_email_when_the_ticket_has_one_else_sms(desk: Engine) -> None:
    assert row_of(desk, reply(desk, EMAIL_KEY, "By mail")).channel == "email"
    sms = row_of(desk, reply(desk, PHONE_KEY, "By text"))
    assert (sms.channel, sms.to_addr, sms.subject, sms.thread_refs) == (
        "sms",
        "+14155552671",
        None,
        None,
    )


def test_the_subject_keeps_the_customers_with_the_key_added_once(desk: Engine) -> None:
    receive(desk, EMAIL_KEY, "<m1@mail.example>", "Dashboard filters")
    assert row_of(desk, reply(desk, EMAIL_KEY, "a")).subject == (
        f"Re: [{EMAIL_KEY}] Dashboard filters"
    )
    receive(desk, EMAIL_KEY, "<m2@mail.example>", f"RE: Re: [{EMAIL_KEY}] Dashboard\n filters")
    assert row_of(desk, reply(desk, EMAIL_KEY, "b")).subject == (
        f"Re: [{EMAIL_KEY}] Dashboard filters"
    )
    receive(desk, EMAIL_KEY, "<m3@mail.example>", "Dash\x1b[2Jboard filters\r\nBcc: x@y.example")
    assert row_of(desk, reply(desk, EMAIL_KEY, "b")).subject == (
        f"Re: [{EMAIL_KEY}] Dash [2Jboard filters Bcc: x@y.example"
    )
    receive(desk, EMAIL_KEY, "<ooo@mail.example>", "Out of office", may_answer=False)
    assert row_of(desk, reply(desk, EMAIL_KEY, "c")).subject == (
        f"Re: [{EMAIL_KEY}] Dash [2Jboard filters Bcc: x@y.example"
    )


def test_thread_refs_are_the_conversation_oldest_first_the_first_and_last_ten(
    desk: Engine,
) -> None:
    receive(desk, EMAIL_KEY, "<first@mail.example>")
    first_reply = row_of(desk, reply(desk, EMAIL_KEY, "a"))
    assert first_reply.thread_refs == "<first@mail.example>"
    ours = "<cx.1.1.AAAAAAAAAAAAAAAAAAAAAA@example.com>"
    with transaction(desk) as session:  # as a worker records it once sent
        session.connection().execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == first_reply.id)
            .values(status="sent", sent_at=utcnow(), provider_id=ours)
        )
    receive(desk, EMAIL_KEY, "<auto@mail.example>", may_answer=False)  # an auto-reply: not ours
    for n in range(12):
        receive(desk, EMAIL_KEY, f"<m{n}@mail.example>")
    refs = (row_of(desk, reply(desk, EMAIL_KEY, "b")).thread_refs or "").split()
    assert refs == ["<first@mail.example>", *[f"<m{n}@mail.example>" for n in range(2, 12)]]

    assert row_of(desk, reply(desk, PHONE_KEY, "c")).thread_refs is None  # SMS: no thread


def test_our_sent_replies_join_the_thread_in_time_order(desk: Engine) -> None:
    receive(desk, EMAIL_KEY, "<c1@mail.example>")
    sent = row_of(desk, reply(desk, EMAIL_KEY, "a"))
    with transaction(desk) as session:
        session.connection().execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == sent.id)
            .values(status="sent", sent_at=utcnow(), provider_id="<cx.1.1.x@example.com>")
        )
    receive(desk, EMAIL_KEY, "<c2@mail.example>")
    refs = row_of(desk, reply(desk, EMAIL_KEY, "b")).thread_refs
    assert refs == "<c1@mail.example> <cx.1.1.x@example.com> <c2@mail.example>"


# -- refused: one line, nothing written --------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "args", "fragments"),
    [
        ("empty message", [EMAIL_KEY, "--message", "  "], ["message: is required"]),
        ("no email", [PHONE_KEY, "--channel", "email", "--message", "Hi"], ["no customer email"]),
        ("no phone", [EMAIL_KEY, "--channel", "sms", "--message", "Hi"], ["no customer phone"]),
        ("files by SMS", [PHONE_KEY, "--message", "Hi", "--attach", "{csv}"],
         ["SMS cannot carry files"]),
        ("too long an SMS", [PHONE_KEY, "--message", "x" * 1601], ["at most 1,600 characters"]),
        ("opted out", [PHONE_KEY, "--message", "Hi"], ["+14155552671 opted out of SMS"]),
        ("unknown channel", [EMAIL_KEY, "--channel", "fax", "--message", "Hi"],
         ["channel: must be one of email, sms"]),
        ("a file type not allowed", [EMAIL_KEY, "--message", "Hi", "--attach", "{exe}"],
         ["file type not allowed"]),
        ("no such ticket", ["EXP-99", "--message", "Hi"], ["EXP-99"]),
        ("not on the team", [EMAIL_KEY, "--message", "Hi", "--as", "kenji"],
         ["not on the team of EXP-1"]),
        ("a volunteer", [EMAIL_KEY, "--message", "Hi", "--as", "vera"], []),
    ],
)  # fmt: skip
def test_a_refused_reply_is_one_error_line_and_writes_nothing(
    desk: Engine, cli: Cli, tmp_path: Path, case: str, args: list[str], fragments: list[str]
) -> None:
    files = {"csv": tmp_path / "weights.csv", "exe": tmp_path / "setup.exe"}
    for path in files.values():
        path.write_bytes(CSV)
    if case == "opted out":
        with transaction(desk) as session:
            session.add(AddressFlag(channel="sms", address="+14155552671", kind="opted_out"))
    args = [arg.format(**{name: str(path) for name, path in files.items()}) for arg in args]
    if "--as" not in args:
        args += ["--as", "maya"]
    before = dump_tables(desk, WRITTEN)
    assert_one_error_line(cli("ticket", "reply", *args), *fragments)
    assert dump_tables(desk, WRITTEN) == before


# -- delivered through real peers --------------------------------------------------------------


@pytest.fixture
def reply_env(smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> SmtpPeer:
    """Workers send to ``smtp_server``, with the desk's Reply-To set to ``REPLY_TO``."""
    for name, value in smtp_variables(smtp_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CXDESK_MAIL_REPLY_TO", REPLY_TO)
    return smtp_server


def received(peer: SmtpPeer, outbox_id: int) -> EmailMessage:
    """The message the SMTP peer accepted for an outbox row (found by its signed id)."""
    found = [m.message for m in peer.received if f".{outbox_id}." in str(m.message["Message-ID"])]
    assert len(found) == 1, [str(m.message["Message-ID"]) for m in peer.received]
    return found[0]


def test_the_worker_delivers_a_reply_threaded_and_a_workflow_email_marked_automatic(
    cli: Cli, engine: Engine, reply_env: SmtpPeer, tmp_path: Path
) -> None:
    ok(cli("demo"))
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    receive(engine, key, "<CAF=first+x@mail.gmail.com>", "Dashboard filters reset")
    long_id = "<" + "DM6PR11MB4073" * 6 + "@DM6PR11MB4073.namprd11.prod.outlook.com>"
    receive(engine, key, long_id, f"RE: [{key}] Dashboard filters reset")
    attachment = tmp_path / "Pondération.csv"
    attachment.write_bytes(CSV)
    line = ok(cli("ticket", "reply", key, "--as", EXPERT, "--message",
                  "Zoë, the filters now persist.", "--attach", str(attachment)))  # fmt: skip
    assert f"queued by email to Zoë & Ann O'Neil <{CUSTOMER['email']}> with 1 file" in line

    assert "failed 0" in ok(cli("worker", "--once"))
    rows = {r.comment_id is not None: r for r in outbox(engine) if r.channel == "email"}
    ready, ours = rows[False], rows[True]
    assert (ready.status, ours.status) == ("sent", "sent")

    message = received(reply_env, ours.id or 0)
    signed = message_ids.verify(read_secret(engine), str(message["Message-ID"]))
    assert signed == message_ids.SignedId(ticket_id=ours.ticket_id, outbox_id=ours.id or 0)
    assert ours.provider_id == str(message["Message-ID"])
    assert str(message["Subject"]) == f"Re: [{key}] Dashboard filters reset"
    assert str(message["In-Reply-To"]) == long_id
    assert str(message["References"]).split() == ["<CAF=first+x@mail.gmail.com>", long_id]
    assert str(message["Reply-To"]) == REPLY_TO
    assert message["Auto-Submitted"] is None
    assert str(message["X-Loop"]) == "desk@example.com"
    [part] = list(message.iter_attachments())
    assert (part.get_filename(), part.get_content_type()) == ("Pondération.csv", "text/csv")
    assert part.get_content() in (CSV, CSV.decode())  # a text part may come back as str
    assert part.get_payload(decode=True) == CSV
    assert message.get_body(("plain",)).get_content() == "Zoë, the filters now persist.\n"  # type: ignore[union-attr]

    automatic = received(reply_env, ready.id or 0)
    assert str(automatic["Auto-Submitted"]) == "auto-generated"
    assert str(automatic["X-Loop"]) == "desk@example.com"
    assert automatic["In-Reply-To"] is None and automatic["References"] is None
    assert str(automatic["Reply-To"]) != REPLY_TO  # the workflow names the expert's address
    assert message_ids.verify(read_secret(engine), str(automatic["Message-ID"])) is not None

    # The next reply answers the last message of the thread: the reply just sent.
    ok(cli("ticket", "reply", key, "--as", EXPERT, "--message", "One more thing"))
    assert "failed 0" in ok(cli("worker", "--once"))
    [second] = [r for r in outbox(engine) if r.comment_id and r.id != ours.id]
    follow_up = received(reply_env, second.id or 0)
    assert str(follow_up["In-Reply-To"]) == ours.provider_id
    assert str(follow_up["References"]).split()[-2:] == [long_id, ours.provider_id]
    log = json.loads(ok(cli("ticket", "show", key, "--json", "--as", EXPERT)))["log"]
    assert [e["field"] for e in log if e["kind"] == "ticket.replied"] == ["email", "email"]


@pytest.mark.usefixtures("sms_env")
def test_an_sms_reply_goes_to_the_twilio_contract_mock(desk: Engine, cli: Cli) -> None:
    line = ok(cli("ticket", "reply", PHONE_KEY, "--as", "maya", "--message", "Call you at 3?"))
    assert "queued by sms to +14155552671" in line
    assert "failed 0" in ok(cli("worker", "--once"))
    [row] = outbox(desk)
    assert (row.channel, row.status, row.body) == ("sms", "sent", "Call you at 3?")
    assert SID.match(row.provider_id or ""), row.provider_id


# -- staleness ---------------------------------------------------------------------------------


def test_a_reply_still_goes_when_the_ticket_is_resolved_at_once_unlike_an_automatic_message(
    desk: Engine, cli: Cli, reply_env: SmtpPeer
) -> None:
    ok(cli("ticket", "update", EMAIL_KEY, "--as", "maya", "--owner", "maya", "--comment", "Mine"))
    comment_id = reply(desk, EMAIL_KEY, "Fixed: the filters now persist.")
    with unit_of_work(desk) as session:
        automatic = enqueue(session, channel="email", to="zoe@example.com", subject="Ready",
                            body="Maya is ready", ticket_id=ticket(desk, EMAIL_KEY).id)  # fmt: skip
    ok(cli("ticket", "update", EMAIL_KEY, "--as", "maya", "--status", "resolved",
           "--owner", "omar", "--comment", "Done"))  # fmt: skip

    report = DeliveryWorker(desk, load_settings()).run_once()
    assert report.results == {"sent": 1, "failed": 0} and report.stale == 1
    assert row_of(desk, comment_id).status == "sent"
    [stale] = outbox(desk, automatic.id or 0)
    assert stale.status == "stale" and "ticket resolved" in (stale.last_error or "")
    assert len(reply_env.received) == 1


def test_a_reply_goes_stale_only_past_its_seven_days(desk: Engine, reply_env: SmtpPeer) -> None:
    comment_id = reply(desk, EMAIL_KEY, "Are you still there?")
    row = row_of(desk, comment_id)
    assert row.valid_until is not None
    worker = DeliveryWorker(desk, load_settings())
    report = worker.run_once(now=row.valid_until + timedelta(seconds=1))
    assert report.stale == 1 and reply_env.received == []
    assert "not sent in time" in (row_of(desk, comment_id).last_error or "")


def test_replies_over_the_attachment_budget_wait_for_the_next_round_uncounted(
    desk: Engine, reply_env: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [
        reply(desk, EMAIL_KEY, f"File {n}", attachments=[NewAttachment(f"f{n}.csv", CSV * 10)])
        for n in range(3)
    ]
    monkeypatch.setattr(mail_batch, "ATTACHMENT_BUDGET", len(CSV) * 15)  # one reply's files
    with read_session(desk) as session:
        rows = list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())
    assert len(mail_batch.emails_for(desk, rows, mail_from="desk@example.com")) == 1

    report = DeliveryWorker(desk, load_settings()).run_once()
    assert report.results == {"sent": 3, "failed": 0}
    assert [(r.status, r.attempts) for r in map(lambda i: row_of(desk, i), ids)] == [
        ("sent", 1)
    ] * 3
    names = [[p.get_filename() for p in m.message.iter_attachments()] for m in reply_env.received]
    assert names == [["f0.csv"], ["f1.csv"], ["f2.csv"]]
