"""One raw email in, handled once: the path ``cxdesk mail import`` and ``mail fetch`` share.

``receive_email`` parses the bytes (stdlib ``email``, ``policy.default``: defects are
tolerated, garbage is a ``RefusedMail`` with one line and nothing stored), then in one
transaction records the message by its Message-ID (or a digest of the bytes when it has none:
a second import or fetch of it is a ``duplicate`` and changes nothing), asks
``hygiene.classify`` what kind of message it is, and routes it:

- a **bounce** goes to ``hygiene.record_bounce``; **our own mail come back** (loop) is ignored;
- an **auto-reply** (out-of-office) is logged on the ticket it answers, and opens or reopens
  nothing;
- a **person's** (or a list's) message joins the ticket one of *our signed* Message-IDs in its
  In-Reply-To/References names (``store.message_ids``: a forged or unsigned id names nothing),
  else the ticket whose key is in the subject (``[EXP-12]``) when the sender is that ticket's
  customer, else it opens a ticket in the inbound team with the sender as customer. A found
  ticket that is resolved is reopened within ``reopen_days``; later or closed, the message
  opens a new ticket that follows it (``store.inbound.continue_ticket``).

The customer's words are the message's new text and files (``content``). A desk problem (no
team to receive mail, the database away) is a ``DeskError``, not a refusal: the message was
not handled and can be tried again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from functools import partial

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from cxdesk.engine.inbound import content, hygiene
from cxdesk.store import inbound, message_ids
from cxdesk.store.db import transaction
from cxdesk.store.directory import get_setting
from cxdesk.store.events import record_event
from cxdesk.store.models import OutboxMessage, StatusCategory, Team, Ticket
from cxdesk.store.tickets import status_category
from cxdesk.text import printable, text_problem

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
"""The largest message a door hands in (Postfix's default limit is 10 MB; 5 attachments of
500 KB in base64 with an HTML body fit well within it)."""
MAX_NESTING = 30
"""Multipart levels a message may nest (real mail uses 3 or 4; the stdlib's walk and
get_body recurse, and 600 levels exhaust Python's stack)."""
MAX_PARTS = 200
"""Parts a message may have (each file beyond the desk's 5 is listed on the ticket)."""
MAX_HEADER_CHARS = 64 * 1024
"""The longest header a message may have (Postfix keeps 100 KB for all of them): the stdlib
reads an unstructured header in time growing with the square of its length (a 1.9 MB
References took 18 s)."""
MAX_SUBJECT_KEYS = 3
"""Ticket keys of a subject looked up (each is a query: 150,000 of them took 47 s)."""
CHANNEL = "email"
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|tr|rv)\s*(?:\[\d+\])?\s*:)+", re.I)


@dataclass(frozen=True)
class Received:
    """What became of one message."""

    outcome: str
    """e.g. ``commented``, ``reopened``, ``opened``, ``followed_up``, ``auto_reply``,
    ``bounce``, ``ignored``, ``duplicate``."""
    ticket_key: str | None
    detail: str
    """One line for the user."""

    @property
    def duplicate(self) -> bool:
        return self.outcome == "duplicate"


class RefusedMail(Exception):
    """The message cannot be handled (not RFC 5322, no sender...): ``str()`` is the reason.

    Nothing was stored for it."""


@dataclass(frozen=True)
class ParsedMail:
    """A message with the headers routing needs, read safely."""

    message: EmailMessage
    message_id: str
    sender: str
    """The From address, normalised (lower-case domain)."""
    sender_name: str
    subject: str
    in_reply_to: str
    references: str


def _clean(value: str) -> str:
    """Header text as valid Unicode (raw 8-bit bytes come back as U+FFFD, not surrogates)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header(message: EmailMessage, name: str) -> str:
    """One header's decoded text; its raw text when the header registry cannot parse it."""
    try:
        value = message.get(name)
        return "" if value is None else _clean(str(value))
    except Exception:  # noqa: BLE001  (a malformed header is the sender's, never a traceback)
        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
        return _clean(str(raw))


def parse_mail(raw: bytes) -> ParsedMail:
    """The message in ``raw``, or ``RefusedMail`` saying in one line why it is not one."""
    if not raw.strip():
        raise RefusedMail("empty input: not an email message")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise RefusedMail(f"message of {len(raw) // 1024} KB; the limit is "
                          f"{MAX_MESSAGE_BYTES // 1024} KB")  # fmt: skip
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001  (the parser tolerates almost anything; not this)
        raise RefusedMail(f"not an email message ({type(exc).__name__})") from None
    assert isinstance(message, EmailMessage)
    if not message.keys():
        raise RefusedMail("not an email message: it has no headers")
    for name, value in message.raw_items():
        if len(value) > MAX_HEADER_CHARS:
            shown = printable(_clean(name), lines=False)[:60]
            raise RefusedMail(f"header {shown} of {len(value) // 1024} KB; the limit is "
                              f"{MAX_HEADER_CHARS // 1024} KB")  # fmt: skip
    _check_structure(message)
    from_header = _header(message, "From")
    if not from_header.strip():
        raise RefusedMail("no sender: the message has no From header")
    sender, name = _sender(message, from_header)
    found = message_ids.message_ids_in(_header(message, "Message-ID"))
    message_id = found[0] if found and text_problem(found[0]) is None else ""
    if not message_id:  # none, or with control characters (PostgreSQL refuses a NUL)
        message_id = f"<sha256.{hashlib.sha256(raw).hexdigest()}@cxdesk.digest>"
    return ParsedMail(
        message=message,
        message_id=message_id,
        sender=sender,
        sender_name=printable(" ".join(name.split()), lines=False)[:200],
        subject=printable(" ".join(_header(message, "Subject").split()), lines=False),
        in_reply_to=_header(message, "In-Reply-To"),
        references=_header(message, "References"),
    )


def _sender(message: EmailMessage, from_header: str) -> tuple[str, str]:
    """The From mailbox (normalised address, display name), or ``RefusedMail``.

    Read by the header registry from the header's own structure, never by re-parsing its
    decoded text: an RFC 2047 word is a display name or a word of a local part, so
    ``=?utf-8?q?ann=40example.com=2C?= <eve@evil.example>`` is Eve (re-parsed, the decoded
    text named Ann first, and Ann's subject keys would have let Eve onto Ann's tickets,
    though the MTA's SPF/DMARC saw evil.example). A From naming several mailboxes is refused:
    whose subject keys it may use is not for the desk to guess."""
    try:
        found = [a for a in message["From"].addresses if a.domain]
    except Exception:  # noqa: BLE001  (a header the registry cannot read names no one)
        found = []
    shown = printable(from_header, lines=False)[:120]
    if len({a.addr_spec.lower() for a in found}) > 1:
        raise RefusedMail(f"several senders: From {shown!r} names {len(found)} addresses")
    for address in found:
        try:
            sender = validate_email(address.addr_spec, check_deliverability=False).normalized
        except EmailNotValidError:
            continue
        return sender, _clean(address.display_name)
    raise RefusedMail(f"no usable sender: From {shown!r} holds no valid address")


def _check_structure(message: EmailMessage) -> None:
    """Refuse a message nested deeper than ``MAX_NESTING`` or with more than ``MAX_PARTS``
    parts (walked without recursion)."""
    count = 0
    stack: list[tuple[Message, int]] = [(message, 1)]
    while stack:
        part, depth = stack.pop()
        count += 1
        if depth > MAX_NESTING:
            raise RefusedMail(f"parts nested more than {MAX_NESTING} levels deep")
        if count > MAX_PARTS:
            raise RefusedMail(f"more than {MAX_PARTS} parts")
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            stack.extend((child, depth + 1) for child in children if isinstance(child, Message))


def receive_email(engine: Engine, raw: bytes) -> Received:
    """Parse, classify and route one message in its own transaction (idempotent by
    Message-ID); ``RefusedMail`` when it cannot be handled."""
    mail = parse_mail(raw)
    verdict = hygiene.classify(mail.message)
    words = content.extract(mail.message) if verdict.kind in ("human", "bulk") else None
    with transaction(engine) as session:
        recorded = inbound.record_received(
            session,
            message_id=mail.message_id,
            channel=CHANNEL,
            outcome="received",
            sender=mail.sender,
            subject=mail.subject,
            raw=raw,
            may_answer=verdict.may_answer,
        )
        if not recorded:
            session.rollback()
            return _duplicate(session, mail.message_id)
        if verdict.kind == "bounce" and verdict.bounce is not None:
            line = hygiene.record_bounce(session, verdict.bounce)
            landed = _Landed(Received("bounce", None, f"bounce: {line}"))
        elif verdict.kind in ("bounce", "loop"):
            reason = verdict.reason or verdict.kind
            landed = _Landed(Received("ignored", None, f"ignored: {reason}"))
        elif verdict.kind == "auto_reply":
            landed = _log_auto_reply(session, mail, verdict.reason)
        else:
            assert words is not None
            landed = _route(session, mail, words)
        received = landed.received
        inbound.note_outcome(
            session,
            mail.message_id,
            outcome=received.outcome,
            ticket_id=landed.ticket_id,
            comment_id=landed.comment_id,
            detail=received.detail,
        )
        return received


@dataclass(frozen=True)
class _Landed:
    """What a message became, with the rows its record points at."""

    received: Received
    ticket_id: int | None = None
    comment_id: int | None = None


def _duplicate(session: Session, message_id: str) -> Received:
    earlier = inbound.already_received(session, message_id[:512])
    ticket = session.get(Ticket, earlier.ticket_id) if earlier and earlier.ticket_id else None
    where = f" ({ticket.key})" if ticket else ""
    return Received("duplicate", ticket.key if ticket else None,
                    f"duplicate: already handled{where}")  # fmt: skip


def _locked(session: Session, ticket_id: int) -> Ticket | None:
    return session.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()


def threaded_ticket(session: Session, mail: ParsedMail) -> Ticket | None:
    """The ticket this message answers: our signed id in its thread (newest first), else
    the key in its subject when the sender is that ticket's customer."""
    for signed in message_ids.verified_in(session, mail.in_reply_to, mail.references):
        sent = session.get(OutboxMessage, signed.outbox_id)
        if sent is not None and sent.ticket_id is not None and sent.ticket_id == signed.ticket_id:
            ticket = _locked(session, sent.ticket_id)
            if ticket is not None:
                return ticket
    prefix = re.escape(get_setting(session, "ticket_prefix"))
    found = re.findall(rf"\[\s*({prefix}-[0-9]{{1,18}})\s*\]", mail.subject, re.I)
    for key in list(dict.fromkeys(key.upper() for key in found))[:MAX_SUBJECT_KEYS]:
        ticket = session.exec(
            select(Ticket)
            .where(Ticket.key == key)
            .where(func.lower(Ticket.customer_email) == mail.sender.lower())
            .with_for_update()
        ).first()
        if ticket is not None:
            return ticket
    return None


def _title(session: Session, subject: str) -> str:
    """A ticket title from a subject: without Re:/Fwd: and our ticket keys."""
    prefix = re.escape(get_setting(session, "ticket_prefix"))
    title = re.sub(rf"\[\s*{prefix}-[0-9]+\s*\]", " ", subject, flags=re.I)
    return _REPLY_PREFIX.sub("", title).strip()[:300] or "(no subject)"


def _route(session: Session, mail: ParsedMail, words: content.MailContent) -> _Landed:
    found = threaded_ticket(session, mail)
    open_ticket = partial(
        inbound.open_inbound_ticket,
        session,
        title=_title(session, mail.subject),
        source=CHANNEL,
        customer_name=mail.sender_name,
        customer_email=mail.sender,
    )
    if found is None:
        ticket = open_ticket()
        team = session.get(Team, ticket.team_id)
        outcome = "opened"
        said = f"new ticket in team {team.name if team else '?'} from {mail.sender}"
    else:
        was_open = status_category(session, found.status) != StatusCategory.resolved
        continued = inbound.continue_ticket(session, found)
        if continued is None:
            ticket = open_ticket(follows=found)
            outcome, said = "followed_up", f"new ticket following {found.key} ({found.status})"
        else:
            ticket = continued
            outcome = "commented" if was_open else "reopened"
            said = (
                "added to the conversation" if was_open else "reopened, added to the conversation"
            )
    comment = inbound.add_customer_message(
        session,
        ticket,
        channel=CHANNEL,
        sender=mail.sender,
        body=words.comment_body(),
        attachments=words.files,
    )
    for refused in words.refused:
        record_event(
            session,
            kind="attachment.refused",
            actor=None,
            ticket_id=ticket.id,
            to_value=refused.filename,
            detail=refused.reason,
            triggers_workflows=False,
        )
    if words.refused:
        said += f"; {len(words.refused)} attachment(s) not kept (listed on the ticket)"
    received = Received(outcome, ticket.key, f"{ticket.key}: {said}")
    return _Landed(received, ticket.id, comment.id)


def _log_auto_reply(session: Session, mail: ParsedMail, reason: str) -> _Landed:
    ticket = threaded_ticket(session, mail)
    if ticket is None:
        return _Landed(Received("auto_reply", None, "auto-reply to no ticket of ours: ignored"))
    record_event(
        session,
        kind="message.auto_reply",
        actor=None,
        ticket_id=ticket.id,
        field_name=CHANNEL,
        from_value=mail.sender,
        detail=reason or None,
        triggers_workflows=False,
    )
    said = f"{ticket.key}: auto-reply logged; nothing reopened or sent"
    return _Landed(Received("auto_reply", ticket.key, said), ticket.id)
