"""Issue 14's "Done when", in one conversation on the demo desk, on SQLite and PostgreSQL.

Real parts throughout: the worker sends through aiosmtpd and Twilio's contract mock (Prism),
the customer's answers come from a real Dovecot mailbox through ``cxdesk mail fetch``, their
texts through the survey server's signed ``POST /twilio/sms``.

An expert replies from the ticket; the customer answers from a mail client (In-Reply-To set,
the quoted reply below their text) and the answer lands on the same ticket, as the new text
only, once; an out-of-office answer creates and sends nothing; a bounce of the reply marks it
bounced; mail from a stranger opens a ticket; a signed text lands on the ticket and a forged one
gets 403; after STOP no SMS goes to the number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.store.db import read_session
from cxdesk.store.models import Comment, CommentKind, OutboxMessage, Ticket
from cxdesk.web.settings import ServerSettings
from tests.cli_helpers import Cli, table_counts
from tests.imap_peer import Mailbox
from tests.peers import SmtpPeer
from tests.test_bounce_delivery import exim_bounce_of
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    CUSTOMER,
    EXPERT,
    check_in_and_pull,
    mail_env,
    ok,
    outbox_rows,
    received_with_id,
    sms_env,
)
from tests.test_mail_fetch_cli import use_mailbox
from tests.test_sms_inbound import form, post
from tests.web_helpers import running_server

PHONE = "+14155552671"  # CUSTOMER's phone, as the desk stores it
STRANGER = "Pat Doe <pat@elsewhere.example>"


def answer_from_mail_client(sent: Any, text: str) -> bytes:
    """The customer's answer to ``sent`` as Thunderbird writes it: In-Reply-To/References set,
    the subject kept, the message it answers quoted below the new text."""
    original = sent.message
    quoted = "\n".join(f"> {line}" for line in original.get_content().splitlines())
    answer = EmailMessage()
    answer["From"] = f"Zoë O'Neil <{CUSTOMER['email']}>"
    answer["To"] = str(original["Reply-To"] or original["From"])
    answer["Subject"] = f"Re: {original['Subject']}"
    answer["Date"] = format_datetime(datetime.now(UTC))
    answer["Message-ID"] = make_msgid(domain="example.com")
    answer["In-Reply-To"] = str(original["Message-ID"])
    answer["References"] = str(original["Message-ID"])
    answer.set_content(f"{text}\n\nOn Mon, 7 Dec 2026, the desk wrote:\n{quoted}\n")
    return bytes(answer)


def out_of_office(sent: Any) -> bytes:
    reply = EmailMessage()
    reply["From"] = f"Zoë O'Neil <{CUSTOMER['email']}>"
    reply["To"] = str(sent.message["From"])
    reply["Subject"] = f"Automatic reply: {sent.message['Subject']}"
    reply["Auto-Submitted"] = "auto-replied"
    reply["Message-ID"] = make_msgid(domain="example.com")
    reply["In-Reply-To"] = str(sent.message["Message-ID"])
    reply.set_content("I am out of the office until Monday.")
    return bytes(reply)


def stranger_mail() -> bytes:
    mail = EmailMessage()
    mail["From"] = STRANGER
    mail["To"] = "help@example.com"
    mail["Subject"] = "Where do I find the XM Directory session?"
    mail["Message-ID"] = make_msgid(domain="elsewhere.example")
    mail.set_content("Hello, which room is the XM Directory session in?")
    return bytes(mail)


def conversation(engine: Engine, key: str) -> list[Comment]:
    with read_session(engine) as s:
        ticket = s.exec(select(Ticket).where(Ticket.key == key)).one()
        return list(
            s.exec(select(Comment).where(Comment.ticket_id == ticket.id).order_by(col(Comment.id)))
        )


def fetch_mail(cli: Cli) -> str:
    return ok(cli("mail", "fetch", "--once"))


@pytest.mark.slow
@pytest.mark.usefixtures("sms_env", "mail_env")
def test_a_conversation_with_a_customer_by_email_and_sms(
    cli: Cli,
    engine: Engine,
    smtp_server: SmtpPeer,
    imap_mailbox: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok(cli("demo"))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)

    # The expert replies from the ticket; the worker sends it.
    said = ok(cli("ticket", "reply", key, "--message", "Shared links keep filters now.",
                  "--as", EXPERT))  # fmt: skip
    assert key in said and CUSTOMER["email"] in said
    ok(cli("worker", "--once"))
    [reply_row] = [r for r in outbox_rows(cli) if r["ticket"] == key and r["channel"] == "email"
                   and r["body"].startswith("Shared links")]  # fmt: skip
    assert reply_row["status"] == "sent"
    sent = received_with_id(smtp_server, reply_row["provider_id"])
    assert f"[{key}]" in str(sent.message["Subject"])
    assert "Auto-Submitted" not in sent.message

    # The customer answers from a mail client: the new text only, on the same ticket, once.
    imap_mailbox.append(answer_from_mail_client(sent, "Thanks, that works now!"))
    fetch_mail(cli)
    fetch_mail(cli)
    customer = [c for c in conversation(engine, key) if c.kind == CommentKind.customer]
    assert [c.body for c in customer] == ["Thanks, that works now!"]
    assert customer[0].sender == CUSTOMER["email"]

    # An out-of-office answer creates and sends nothing.
    before = table_counts(engine)
    imap_mailbox.append(out_of_office(sent))
    fetch_mail(cli)
    ok(cli("worker", "--once"))
    after = table_counts(engine)
    for table in ("ticket", "comment", "outbox"):
        assert after[table] == before[table], table

    # A bounce of the reply marks it bounced.
    imap_mailbox.append(exim_bounce_of(sent.raw, CUSTOMER["email"]))
    fetch_mail(cli)
    [row] = [r for r in outbox_rows(cli) if r["id"] == reply_row["id"]]
    assert row["status"] == "bounced" and "550" in (row["last_error"] or ""), row

    # Mail from a stranger opens a ticket.
    imap_mailbox.append(stranger_mail())
    fetch_mail(cli)
    with read_session(engine) as s:
        opened = s.exec(
            select(Ticket).where(Ticket.customer_email == "pat@elsewhere.example")
        ).one()
        assert (opened.source, opened.title) == (
            "email",
            "Where do I find the XM Directory session?",
        )
    assert imap_mailbox.unseen() == []

    # A signed text lands on the ticket; a forged one gets 403; after STOP no SMS goes out.
    settings = ServerSettings(public_url="https://desk.example.org", twilio_auth_token="test-token")
    with running_server(engine, settings) as base:
        assert post(base, form(1, PHONE, "I'm at the desk now")).status == 200
        forged = form(2, PHONE, "Close all my tickets")
        assert post(base, forged, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}).status == 403
        texts = [c.body for c in conversation(engine, key) if c.channel == "sms"]
        assert texts == ["I'm at the desk now"]
        assert post(base, form(3, PHONE, "STOP")).status == 200
    refused = cli("ticket", "reply", key, "--channel", "sms", "--message", "Still there?",
                  "--as", EXPERT)  # fmt: skip
    assert refused.exit_code == 1 and "Error:" in refused.stderr
    # The demo texts a customer whose ticket is pulled: not this number any more.
    again = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    ok(cli("worker", "--once"))
    with read_session(engine) as s:
        after_stop = s.exec(
            select(OutboxMessage).where(
                OutboxMessage.channel == "sms",
                OutboxMessage.to_addr == PHONE,
                col(OutboxMessage.status).in_(("pending", "sent", "failed")),
                col(OutboxMessage.id) > reply_row["id"],
            )
        ).all()
    assert after_stop == []
    with read_session(engine) as s:
        ticket = s.exec(select(Ticket).where(Ticket.key == again)).one()
        assert ticket.owner_id is not None  # pulled: the text would have gone out before STOP
