"""Composing one outgoing email: its headers (threading, loop and auto-reply marks) and parts.

``compose_email`` turns an ``EmailOut`` (what the outbox row says) into the message that goes
on the wire, or refuses it (``RefusedMessage``) before anything is sent:

- a header value holding a line break (header injection), an address that cannot be parsed
  or names more than one mailbox, a Message-ID that is not ``<ascii@ascii>``;
- no From (the message names none and ``[smtp] mail_from`` is unset), or a bad one from the
  settings: not the message's fault, so not permanent.

Every message carries the desk's signed Message-ID (made by the caller), ``Reply-To`` (the
row's, else ``[smtp] reply_to``, else the From address: where the customer's answer goes) and
``X-Loop: <desk address>`` (the addr-spec of ``[smtp] mail_from``, lower case; the From's
when that is unset), so the desk knows its own mail when it comes back. An automatic message
(no reply behind it: workflows, alerts, CSAT) says ``Auto-Submitted: auto-generated`` (RFC
3834), so well-behaved responders do not answer it; an expert's reply does not. A reply's
``thread_refs`` become ``References`` (all of them) and ``In-Reply-To`` (the last), folded
between ids and never encoded (the standard folder would make a long id an RFC 2047 word,
which no mail client matches). Attachments go as MIME parts with their names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from functools import lru_cache

# Anything that could end a header line for some reader: CR, LF and the other breaks.
_LINE_BREAK = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # ASCII, no spaces or angle brackets
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
_PLAIN_ADDRESS = re.compile(r"[!-?A-~]+@[!-?A-~]+")  # ASCII, no spaces, one @
AUTO_SUBMITTED = "auto-generated"


class _IdListHeader(UnstructuredHeader):
    """In-Reply-To and References: Message-IDs folded one per line, never encoded."""

    def fold(self, *, policy: Policy) -> str:
        name: str = self.name  # type: ignore[attr-defined]  # set by BaseHeader.__new__
        return f"{name}: " + f"{policy.linesep} ".join(str(self).split()) + policy.linesep


_SHARED = frozenset(
    ("from", "reply-to", "x-loop", "auto-submitted", "date", "mime-version", "content-type",
     "content-transfer-encoding")
)  # fmt: skip
"""Headers whose value is the same in most messages (the settings' addresses, the marks, the
text part's headers; the date within one second): each value parsed once, folded once."""
_SHARED_KEPT = 64


class _FoldedOnce:
    """A header shared by the messages that carry the same value: folded once per policy
    (what folding reads of the policy: line length, line separator, UTF-8)."""

    def fold(self, *, policy: Policy) -> str:
        key = (policy.max_line_length, policy.linesep, getattr(policy, "utf8", False))
        folds: dict[tuple[object, ...], str] = self.__dict__.setdefault("_folds", {})
        folded = folds.get(key)
        if folded is None:
            folded = folds[key] = super().fold(policy=policy)  # type: ignore[misc]
        return folded


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, building each header class once (it builds one per call).

    Message-ID is stored as given (checked against ``MESSAGE_ID`` first): the standard parser
    for it costs more than the rest of the message. A ``_SHARED`` header is made once per
    value (the last ``_SHARED_KEPT`` values kept) and shared by the messages: a header is
    immutable (a change to a message replaces it), and its parse and fold are what composing
    and sending a message cost most. Together ~1.5x faster composing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.map_to_type("message-id", UnstructuredHeader)  # type: ignore[arg-type]
        for name in ("in-reply-to", "references"):
            self.map_to_type(name, _IdListHeader)  # type: ignore[arg-type]
        self._built: dict[str, type[BaseHeader]] = {}
        self._shared: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        built = self._built.get(name.lower())
        if built is None:
            built = super().__getitem__(name)
            if name.lower() in _SHARED:
                built = type(built.__name__, (_FoldedOnce, built), {})
            built = self._built[name.lower()] = built
        return built

    def __call__(self, name: str, value: str) -> BaseHeader:
        if name.lower() not in _SHARED or not isinstance(value, str):
            return super().__call__(name, value)
        key = (name, value)
        header = self._shared.get(key)
        if header is None:
            if len(self._shared) >= _SHARED_KEPT:
                self._shared.clear()
            header = self._shared[key] = super().__call__(name, value)
        return header


_POLICY = default_policy.clone(header_factory=_HeaderClasses())


@dataclass(frozen=True)
class MailAttachment:
    """A file sent with an email (a reply's attachment)."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class EmailOut:
    """One email to send, as the outbox row says it."""

    outbox_id: int
    to: str
    from_addr: str | None
    """None: ``MailSettings.mail_from``."""
    reply_to: str | None
    """None: ``MailSettings.reply_to``, else the From address."""
    subject: str
    body: str
    message_id: str
    """Deterministic, from the outbox row (given by the caller): the desk's signed id."""
    thread_refs: tuple[str, ...] = ()
    """The conversation's Message-IDs, oldest first: References; the last is In-Reply-To."""
    automatic: bool = True
    """No person wrote it (workflows, alerts, CSAT): marked ``Auto-Submitted``."""
    attachments: tuple[MailAttachment, ...] = ()


class RefusedMessage(Exception):
    """This message cannot be sent as it is; ``str()`` is the one-line reason.

    ``permanent`` is False when the fault is in the settings (no or a bad ``mail_from`` or
    ``reply_to``): the admin fixes it and the message goes out on a later attempt.
    """

    def __init__(self, reason: str, *, permanent: bool = True):
        super().__init__(reason)
        self.permanent = permanent


def compose_email(message: EmailOut, *, mail_from: str, reply_to: str = "") -> EmailMessage:
    """The message as it goes on the wire; ``RefusedMessage`` if it is unsafe or unaddressed.

    ``mail_from``/``reply_to``: the settings' addresses, for a message that names none."""
    sender = message.from_addr or mail_from
    headers = {
        "To": message.to,
        "From": sender,
        "Reply-To": message.reply_to or reply_to or sender,
        "Subject": message.subject,
        "Message-ID": message.message_id,
    }
    for name, value in headers.items():
        if _LINE_BREAK.search(value):
            raise RefusedMessage(f"refused: the {name} header value contains a line break")
    from_settings = {"From": not message.from_addr, "Reply-To": not message.reply_to}
    if not sender:
        raise RefusedMessage(
            "no From address: set CXDESK_MAIL_FROM or [smtp] mail_from", permanent=False
        )
    if not MESSAGE_ID.fullmatch(message.message_id.strip()):
        # Made by the caller from the settings (the mail_from domain): not the message's fault.
        raise RefusedMessage(f"bad Message-ID {message.message_id!r}", permanent=False)
    email = EmailMessage(policy=_POLICY)
    for name in ("From", "To", "Reply-To"):
        email[name] = headers[name]
        try:
            single_address(email, name)
        except RefusedMessage as exc:
            if from_settings.get(name):
                setting = "mail_from" if headers[name] == sender else "reply_to"
                raise RefusedMessage(f"{exc} (the {setting} setting)", permanent=False) from exc
            raise
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = message.message_id.strip()
    refs = [ref for ref in message.thread_refs if MESSAGE_ID.fullmatch(ref)]
    if refs:
        email["In-Reply-To"] = refs[-1]
        email["References"] = " ".join(refs)
    if message.automatic:
        email["Auto-Submitted"] = AUTO_SUBMITTED
    email["X-Loop"] = loop_address(mail_from) or single_address(email, "From").addr_spec.lower()
    # Quoted-printable keeps non-ASCII text 7-bit clean for servers without 8BITMIME.
    email.set_content(message.body, cte=None if message.body.isascii() else "quoted-printable")
    add_attachments(email, message.attachments)
    return email


@lru_cache(maxsize=8)
def loop_address(mail_from: str) -> str:
    """The desk's own address for ``X-Loop`` (the addr-spec of ``mail_from``, lower case), or
    "" when the setting holds none usable."""
    address = parseaddr(mail_from)[1].strip().lower()
    return address if _PLAIN_ADDRESS.fullmatch(address) else ""


def add_attachments(email: EmailMessage, attachments: Sequence[MailAttachment]) -> None:
    """Each file as a MIME part (base64), named safely: a name's control characters and line
    breaks become ``_`` (the name is the customer's to read, not ours to trust)."""
    for item in attachments:
        content_type = item.content_type.lower()
        if not _CONTENT_TYPE.fullmatch(content_type) or content_type.startswith(
            ("multipart/", "message/")
        ):
            content_type = "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        name = "".join(ch if ch.isprintable() else "_" for ch in item.filename).strip()
        email.add_attachment(
            item.content, maintype=maintype, subtype=subtype, filename=name or "attachment"
        )


def single_address(email: EmailMessage, name: str) -> Address:
    """The one mailbox in header ``name``; ``RefusedMessage`` if it holds none or several."""
    header = email[name]
    addresses = header.addresses
    if len(addresses) != 1 or header.defects or not addresses[0].domain:
        raise RefusedMessage(f"bad address in {name}: {str(header)!r}")
    address: Address = addresses[0]
    return address
