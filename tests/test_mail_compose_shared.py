"""Composing: headers shared between messages (the settings' addresses, the marks, the text
part's headers, parsed and folded once) give the bytes a fresh parse gives, whatever policy
flattens them, and a change to one message leaves the others' as they were."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8

from aiosmtplib.email import flatten_message

from cxdesk.engine.channels.mail_compose import EmailOut, compose_email

MAIL_FROM = "Équipe Ask the Experts <desk@example.com>"


def _message(n: int, *, body: str = "Hi Zoë,\nyour ticket is ready.\n") -> EmailMessage:
    out = EmailOut(
        outbox_id=n,
        to=f"Customer {n} <customer{n}@example.com>",
        from_addr=None,
        reply_to=None,
        subject=f"Inès is ready for you (EXP-{n})",
        body=body,
        message_id=f"<shared.{n}@example.com>",
    )
    return compose_email(out, mail_from=MAIL_FROM)


def _fresh(email: EmailMessage) -> EmailMessage:
    """The same headers and content, each header parsed anew by the standard policy."""
    copy = EmailMessage()
    for name, value in email.items():
        copy[name] = str(value)
    copy.set_payload(email.get_payload())
    return copy


def test_shared_headers_flatten_as_freshly_parsed_ones_under_every_policy() -> None:
    first, second = _message(1), _message(2)
    assert first["From"] is second["From"]  # shared, so the next checks mean something
    assert first["Content-Type"] is second["Content-Type"]
    for policy in (SMTP, SMTPUTF8, SMTP.clone(max_line_length=30), SMTP.clone(linesep="\n")):
        for email in (first, second):
            assert email.as_bytes(policy=policy) == _fresh(email).as_bytes(policy=policy)
    assert b"From: =?utf-8?q?=C3=89quipe?= Ask the Experts <desk@example.com>\r\n" in (
        flatten_message(first)
    )
    assert "From: Équipe Ask the Experts <desk@example.com>\r\n".encode() in flatten_message(
        first, utf8=True
    )


def test_a_change_to_one_message_leaves_the_shared_headers_of_the_others() -> None:
    first = _message(1)
    first.replace_header("Reply-To", "Other Desk <other@example.com>")
    first.set_param("charset", "us-ascii")
    del first["X-Loop"]
    first.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    second = _message(2)
    assert str(second["Reply-To"]) == MAIL_FROM
    assert second["Content-Type"].params == {"charset": "utf-8"}
    assert str(second["X-Loop"]) == "desk@example.com"
    assert not second.is_multipart()
    assert second.as_bytes(policy=SMTP) == _fresh(second).as_bytes(policy=SMTP)
