"""Mail hygiene (RFC 3834): each sample under tests/mail classified, each bounce read, and a
bounce recorded on both databases (only our signed id marks anything; workflows hear of it)."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.inbound.hygiene import Bounce, classify, desk_address, record_bounce
from cxdesk.engine.outbox import claim_due, enqueue, list_outbox, retry
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import Conflict
from cxdesk.store import inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import set_setting
from cxdesk.store.message_ids import sign
from cxdesk.store.models import AddressFlag, Event, OutboxMessage, Ticket
from cxdesk.store.survey_links import desk_secret
from tests.cli_helpers import Cli
from tests.desk import build_small_desk
from tests.test_delivery import SID, ok, sms_env  # noqa: F401 (sms_env is a fixture)

MAIL = Path(__file__).parent / "mail"
DESK = "help@desk.example.com"
SAMPLE_ID = "<cx.1.1.AAAAAAAAAAAAAAAAAAAAAA@desk.example.com>"
"""The id of the failed message in every sample: a real test signs its own in its place."""


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def sample(name: str, *, signed_id: str = SAMPLE_ID) -> EmailMessage:
    raw = (MAIL / name).read_bytes()
    return parse(raw.replace(SAMPLE_ID[1:-1].encode(), signed_id[1:-1].encode()))


# -- classification ---------------------------------------------------------------------------

KINDS = {
    "human-reply.eml": "human",
    "human-out-of-office-subject.eml": "human",  # a person's subject, no automatic header
    "ooo-outlook.eml": "auto_reply",
    "ooo-auto-submitted.eml": "auto_reply",
    "ooo-x-autoreply.eml": "auto_reply",
    "delayed-dsn-postfix.eml": "auto_reply",  # a delay: the message may still arrive
    "list-mail.eml": "bulk",
    "bulk-newsletter.eml": "bulk",
    "noreply-notification.eml": "bulk",
    "system-auto-generated.eml": "bulk",
    "loop-own.eml": "loop",
    "loop-forwarded.eml": "loop",
    "bounce-dsn-postfix.eml": "bounce",
    "bounce-exim.eml": "bounce",
    "bounce-qmail.eml": "bounce",
    "bounce-gmail.eml": "bounce",
    "bounce-gmail-legacy.eml": "bounce",
    "bounce-o365.eml": "bounce",
    "bounce-exchange.eml": "bounce",
}


def test_every_sample_under_tests_mail_is_classified() -> None:
    """Other tests' samples too (the mail gate's): a kind for each, never an exception."""
    kinds = {p.name: classify(parse(p.read_bytes()), own_addresses=[DESK]).kind
             for p in MAIL.glob("*.eml")}  # fmt: skip
    assert set(KINDS) <= set(kinds)
    assert set(kinds.values()) <= {"human", "auto_reply", "bulk", "bounce", "loop"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_sample_is_classified(name: str) -> None:
    verdict = classify(sample(name), own_addresses=[DESK])
    assert verdict.kind == KINDS[name], verdict.reason
    assert verdict.may_answer is (KINDS[name] == "human")
    assert (verdict.reason == "") is (KINDS[name] == "human")


REASON_550 = "550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown"
BOUNCES = {
    "bounce-dsn-postfix.eml": REASON_550 + " in virtual mailbox table",
    "bounce-exim.eml": REASON_550,
    "bounce-qmail.eml": "550 5.1.1 <ann@example.org>... User unknown",
    "bounce-gmail.eml": "550-5.1.1 The email account that you tried to reach does not exist. "
    "Please try double-checking the recipient's email address",
    "bounce-gmail-legacy.eml": REASON_550 + " in local recipient table",
    "bounce-o365.eml": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
    "ann@example.org not found by SMTP address lookup",
    "bounce-exchange.eml": "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
}


@pytest.mark.parametrize("name", sorted(BOUNCES))
def test_each_bounce_names_the_recipient_the_reason_and_our_message(name: str) -> None:
    bounce = classify(sample(name), own_addresses=[DESK]).bounce
    assert bounce is not None
    assert bounce.recipient == "ann@example.org"
    assert bounce.reason.startswith(BOUNCES[name]), bounce.reason
    assert "\n" not in bounce.reason and len(bounce.reason) <= 300
    # The failed message's own id first; never an earlier one its References quote (Exim).
    assert bounce.original_message_ids[0] == SAMPLE_ID
    assert "<cx.1.0.BBBBBBBBBBBBBBBBBBBBBB@desk.example.com>" not in bounce.original_message_ids
    assert bounce.permanent


def test_a_delay_report_is_not_a_bounce_of_the_message() -> None:
    verdict = classify(sample("delayed-dsn-postfix.eml"), own_addresses=[DESK])
    assert verdict.bounce is not None and not verdict.bounce.permanent
    assert verdict.bounce.reason.startswith("delayed: 4.4.1 connect to mx1.example.org")


def test_outlook_out_of_office_is_known_by_its_subject_and_suppress_header() -> None:
    message = sample("ooo-outlook.eml")
    del message["X-MS-Exchange-Inbox-Rules-Loop"]
    verdict = classify(message, own_addresses=[DESK])
    assert (verdict.kind, verdict.reason) == (
        "auto_reply", "X-Auto-Response-Suppress with an out-of-office subject"
    )  # fmt: skip
    message.replace_header("Subject", "About my survey")  # the header alone: never answered
    assert classify(message, own_addresses=[DESK]).kind == "bulk"


def test_a_persons_undeliverable_forward_is_not_read_as_a_bounce() -> None:
    message = sample("bounce-exchange.eml")
    for name in ("From", "Auto-Submitted", "X-MS-Exchange-Message-Is-Ndr"):
        del message[name]
    message["From"] = "Ann Example <ann@example.org>"
    assert classify(message, own_addresses=[DESK]).kind == "human"


def test_a_bounce_without_any_id_is_still_a_bounce() -> None:
    raw = (MAIL / "bounce-qmail.eml").read_bytes()
    cut = raw[: raw.index(b"--- Below this line")]
    bounce = classify(parse(cut), own_addresses=[DESK]).bounce
    assert bounce is not None and bounce.original_message_ids == ()
    assert bounce.recipient == "ann@example.org"


def test_the_loop_address_is_the_desks_from_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_MAIL_FROM", "Ask the Experts <Help@Desk.Example.com>")
    assert desk_address() == DESK
    assert classify(sample("loop-own.eml")).kind == "loop"
    monkeypatch.setenv("CXDESK_MAIL_FROM", "desk@elsewhere.example")
    assert classify(sample("loop-own.eml")).kind != "loop"


def test_hostile_headers_do_not_break_classification() -> None:
    raw = (
        b"From: =?utf-8?b?\xff\xfe?= <<<@@>>\r\nTo: ,,,\r\nSubject: =?x-unknown?q?a?=\r\n"
        b"Auto-Submitted: \r\nContent-Type: multipart/report; report-type=delivery-status\r\n"
        b"\r\nno boundary at all " + b"550 " * 10000
    )
    verdict = classify(parse(raw), own_addresses=[DESK])
    assert verdict.kind == "bounce"  # a report by its type, with nothing usable in it
    assert verdict.bounce is not None and verdict.bounce.original_message_ids == ()
    nested = b"From: a@x.example\r\nContent-Type: multipart/report; report-type=delivery-status; "
    nested += b"boundary=b0\r\n\r\n"
    for level in range(500):  # deeper than any report, not as deep as the parser's limit
        nested += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (
            level,
            level + 1,
        )
    assert classify(parse(nested), own_addresses=[DESK]).kind == "bounce"


# -- recording a bounce -----------------------------------------------------------------------


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    with transaction(engine) as s:
        set_setting(s, inbound.INBOUND_TEAM_SETTING, "Solo")
    return engine


def _sent_reply(engine: Engine, customer: str, phone: str = "") -> tuple[int, str]:
    """A ticket of ``customer``'s and an email sent to them; its outbox id and signed id."""
    with transaction(engine) as s:
        ticket = inbound.open_inbound_ticket(
            s, title="Export", source="email", customer_email=customer, customer_phone=phone
        )
        row = enqueue(s, channel="email", to=customer, subject=f"[{ticket.key}] Export",
                      body="Hello", ticket_id=ticket.id)  # fmt: skip
        row.status = "sent"
        assert row.id is not None
        return row.id, sign(desk_secret(s), ticket_id=ticket.id, outbox_id=row.id,
                            domain="desk.example.com")  # fmt: skip


def _record(engine: Engine, message: EmailMessage) -> str:
    bounce = classify(message, own_addresses=[DESK]).bounce
    assert bounce is not None
    with unit_of_work(engine) as s:
        return record_bounce(s, bounce)


@pytest.mark.parametrize("name", ["bounce-dsn-postfix.eml", "bounce-exim.eml", "bounce-o365.eml"])
def test_a_bounce_marks_our_message_flags_the_address_and_raises_the_event(
    desk: Engine, name: str
) -> None:
    outbox_id, signed = _sent_reply(desk, "ann@example.org")
    other_id, _ = _sent_reply(desk, "bob@example.org")
    said = _record(desk, sample(name, signed_id=signed))
    assert said.startswith(f"outbox #{outbox_id} to ann@example.org bounced: 550 5.1.")
    with read_session(desk) as s:
        row, other = s.get(OutboxMessage, outbox_id), s.get(OutboxMessage, other_id)
        assert row is not None and other is not None
        assert (row.status, other.status) == ("bounced", "sent")
        assert row.last_error is not None and row.last_error.startswith("550 5.1.")
        flag = s.exec(select(AddressFlag)).one()
        assert (flag.channel, flag.address, flag.kind) == ("email", "ann@example.org", "bounced")
        assert flag.reason == row.last_error
        event = s.exec(select(Event).where(Event.kind == "message.bounced")).one()
        assert (event.ticket_id, event.to_value) == (row.ticket_id, "ann@example.org")
        assert event.dispatched_at is not None  # a workflow event, dispatched in its unit
        assert [m.id for m in list_outbox(s, status="bounced")] == [outbox_id]
    assert claim_due(desk, channel="email").messages == []  # final: never sent again
    with pytest.raises(Conflict, match="is bounced; only failed or dead"), transaction(desk) as s:
        retry(s, outbox_id=outbox_id)
    again = _record(desk, sample(name, signed_id=signed))
    assert again == f"outbox #{outbox_id} to ann@example.org was already marked bounced"
    with read_session(desk) as s:
        assert len(s.exec(select(Event).where(Event.kind == "message.bounced")).all()) == 1


def test_a_forged_or_unsigned_id_marks_nothing(desk: Engine) -> None:
    _, signed = _sent_reply(desk, "ann@example.org")
    bob_id, bob_signed = _sent_reply(desk, "bob@example.org")
    # Ann's signature on Bob's ids, a made-up signature, an id naming the wrong ticket.
    forged = bob_signed.split(".")[:3] + signed.split(".")[3:]
    made_up = f"<cx.2.{bob_id}.{'x' * 22}@desk.example.com>"
    wrong_ticket = signed.replace("cx.1.", "cx.2.")
    for fake in (".".join(forged), made_up, wrong_ticket, SAMPLE_ID):
        said = _record(desk, sample("bounce-dsn-postfix.eml", signed_id=fake))
        assert said.startswith("bounce to ann@example.org names no message of ours"), said
    with read_session(desk) as s:
        assert {m.status for m in list_outbox(s)} == {"sent"}
        assert s.exec(select(AddressFlag)).all() == []
        assert s.exec(select(Event).where(Event.kind == "message.bounced")).all() == []


def test_a_delay_marks_nothing(desk: Engine) -> None:
    _, signed = _sent_reply(desk, "ann@example.org")
    bounce = classify(sample("delayed-dsn-postfix.eml", signed_id=signed)).bounce
    assert bounce is not None
    with unit_of_work(desk) as s:
        assert record_bounce(s, bounce).startswith("delivery delayed, nothing marked")
    with read_session(desk) as s:
        assert {m.status for m in list_outbox(s)} == {"sent"}


@pytest.mark.usefixtures("sms_env")
def test_a_workflow_falls_back_to_sms_when_an_email_bounces(desk: Engine, cli: Cli) -> None:
    with transaction(desk) as s:
        save_workflow(
            s, actor=None, name="Bounced: text them", event="message.bounced",
            tasks=[{"type": "send_sms", "to": "${tck://Field/customerPhone}",
                    "body": "We could not email you about ${tck://Field/key}: "
                            "${e://Field/toValue} bounced. Reply here."}],
        )  # fmt: skip
    outbox_id, signed = _sent_reply(desk, "ann@example.org", phone="+14155552671")
    _record(desk, sample("bounce-gmail.eml", signed_id=signed))
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket)).one()
        sms = s.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms")).one()
    assert (sms.to_addr, sms.ticket_id, sms.status) == ("+14155552671", ticket.id, "pending")
    assert sms.body == f"We could not email you about {ticket.key}: ann@example.org bounced. " \
        "Reply here."  # fmt: skip
    ok(cli("worker", "--once"))  # the SMS goes out through Twilio (its contract mock)
    with read_session(desk) as s:
        sent = s.get(OutboxMessage, sms.id)
        assert sent is not None and sent.status == "sent", sent
        assert SID.match(sent.provider_id or "")


def test_bounce_dataclass_defaults_mark_nothing(desk: Engine) -> None:
    with unit_of_work(desk) as s:
        said = record_bounce(s, Bounce(reason="550 no such user"))
    assert said == "bounce names no message of ours, nothing marked: 550 no such user"
