"""Reading delivery failure reports: who failed, why, and which message of ours it was.

``find_bounce`` reads a report in the standard form (RFC 3464: ``multipart/report;
report-type=delivery-status`` with a ``message/delivery-status`` part, the original attached as
``message/rfc822`` or ``text/rfc822-headers``) and in the common non-standard forms (``FORMS``):
Exim's and qmail's plain-text bounces, Gmail's "Delivery Status Notification", Office 365 /
Exchange non-delivery reports, Postfix's "Undelivered Mail Returned to Sender", sendmail's
"Returned mail". It says nothing of what the report is about beyond what it finds: the record
(``hygiene.record_bounce``) trusts only a Message-ID the desk signed.

A report of a delay (``Action: delayed``, a 4.x.x status, "still being retried") or of a
success (``Action: delivered``/``relayed``/``expanded``) is a ``Bounce`` with ``permanent``
False: the message may still arrive, so nothing is marked.

Only the first ``SCAN_LIMIT`` characters of each text part are read: a hostile message cannot
make the scan long.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report about a message the desk sent."""

    reason: str
    """One line, e.g. "550 5.1.1 user unknown"."""
    recipient: str | None = None
    """The address that failed, when the report says it."""
    original_message_ids: tuple[str, ...] = ()
    """Message-IDs of the failed message found in the report (ours are signed), most trusted
    first: the attached message's, a quoted ``Message-ID:`` line, the report's In-Reply-To."""
    permanent: bool = True
    """False: a delay or a success report; the message may still arrive, nothing is marked."""


SCAN_LIMIT = 256 * 1024
REASON_CHARS = 300
MAX_DEPTH = 16

_ID = re.compile(r"<[^<>\s@]{1,250}@[^<>\s]{1,250}>")
_MESSAGE_ID_LINE = re.compile(r"^[ \t]*message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.I | re.M)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
# "550 5.1.1 ...", "550-5.1.1 ...", "554 Message rejected", "5.1.1 ..." (a code, then words)
_CODE = r"(?<![\w.])([245]\d\d)(?![\d.])(?:[ -]([245]\.\d{1,3}\.\d{1,3}))?"
_SMTP_REPLY = re.compile(_CODE + r"[ \t:]+[^\s\d]")
"""A reply code with words after it on its line: "550 5.1.1 <ann@...>: User unknown"."""
_SMTP_CODE = re.compile(_CODE + r"\s*$")
"""A reply code ending its line, its words folded onto the next: Postfix's "said: 550 5.1.1"."""
_REPEATED_CODE = re.compile(r"(?<=\S) [245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?= )")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
_O365_REPLY = re.compile(r"Remote Server returned '([^'\r\n]{1,400})'", re.I)
_TAGS = re.compile(r"<[^<>]{0,2000}>")


@dataclass(frozen=True)
class Form:
    """A non-standard bounce: how to know it, where its copy of our message starts, and how
    it says a failure is only a delay."""

    name: str
    marker: re.Pattern[str]
    """Found in the subject or the report's text."""
    copy_starts: re.Pattern[str] | None = None
    """The line after which the report quotes the failed message (its headers)."""
    recipient: re.Pattern[str] | None = None
    """Group 1: the failed address, in the report's text."""
    delayed: re.Pattern[str] | None = None


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I | re.M)


FORMS = (
    Form(
        "exim",
        _re(r"^This message was created automatically by mail delivery software"),
        _re(
            r"^-+ This is a copy of the message, including all the headers\. -+$"
            r"|^-+ The body of the message is \d+ characters long"
        ),
        _re(r"following address\(es\) failed:\s+(?:pipe to \S+\s+)?<?(" + _ADDRESS.pattern + ")"),
        _re(r"has not yet been delivered|^Warning: message \S+ delayed"),
    ),
    Form(
        "qmail",
        _re(r"^Hi\. This is the qmail-send program"),
        _re(r"^--- (?:Below this line is a copy of the message|Enclosed are the original headers)"),
        _re(r"^<(" + _ADDRESS.pattern + r")>:\s*$"),
    ),
    Form(
        "gmail",
        _re(
            r"Delivery Status Notification \((?:Failure|Delay)\)|\bAddress not found\b"
            r"|Delivery to the following recipient(?:s)? (?:failed permanently|has been delayed)"
            r"|^Your message wasn't delivered to "
        ),
        _re(r"^-+ Original message -+$"),
        _re(
            r"(?:Your message wasn't delivered to|failed permanently:|has been delayed:)\s+<?("
            + _ADDRESS.pattern
            + ")"
        ),
        _re(r"Delivery Status Notification \(Delay\)|has been delayed|^Delivery incomplete$"),
    ),
    Form(
        "office365",
        _re(
            r"^(?:Undeliverable|Delivery delayed):"
            r"|Delivery has failed to these recipients or groups"
            r"|^Your message to \S+ couldn't be delivered|^Delivery is delayed to these recipients"
        ),
        _re(r"^Original message headers:?\s*$"),
        _re(
            r"(?:recipients or groups:\s+|^Your message to\s+)[^@\n]{0,200}?("
            + _ADDRESS.pattern
            + ")"
        ),
        _re(r"^Delivery delayed:|Delivery is delayed to these recipients"),
    ),
    Form(
        "postfix",
        _re(
            r"^Undelivered Mail Returned to Sender$|^Delayed Mail \(still being retried\)$"
            r"|^This is the mail system at host "
        ),
        _re(r"^Content-Description: Undelivered Message|^Original message headers:"),
        _re(r"^<(" + _ADDRESS.pattern + r")>(?: \([^)\n]{0,200}\))?: "),
        _re(r"^Delayed Mail \(still being retried\)$|^#+ THIS IS A WARNING ONLY"),
    ),
    Form(
        "sendmail",
        _re(
            r"^Returned mail: |^Warning: could not send message for past"
            r"|^[ \t]*----- The following addresses had permanent fatal errors -----$"
        ),
        _re(r"^[ \t]*-+ (?:Original message follows|Transcript of session follows)"),
        _re(r"permanent fatal errors -----\s+<?(" + _ADDRESS.pattern + ")"),
        _re(r"^Warning: could not send message for past|will keep trying"),
    ),
)


def text_of(part: Message) -> str:
    """A text part as a string, whatever its charset claims (undecodable bytes replaced)."""
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
    except (LookupError, ValueError, AssertionError, TypeError):
        content = None
    if not isinstance(content, str):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content[:SCAN_LIMIT]


def header(message: Message, name: str) -> str:
    """One header as text ("" when absent or unreadable)."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - a malformed header of a hostile message is "absent"
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _parts(message: Message, depth: int = 0) -> Iterator[Message]:
    """Every leaf part, not descending into attached messages (their text is theirs), nor
    deeper than ``MAX_DEPTH`` multiparts (a report nests two or three)."""
    payload = message.get_payload() if message.is_multipart() else None
    if not isinstance(payload, list):
        yield message
        return
    for part in payload if depth < MAX_DEPTH else []:
        if not isinstance(part, Message):
            continue
        if part.get_content_maintype() == "message":
            yield part
        else:
            yield from _parts(part, depth + 1)


def report_text(message: Message) -> str:
    """The human-readable text of a report: its text/plain parts (else its HTML, untagged)."""
    plain = [text_of(p) for p in _parts(message) if p.get_content_type() == "text/plain"]
    if plain:
        return "\n".join(plain)[:SCAN_LIMIT]
    markup = [text_of(p) for p in _parts(message) if p.get_content_type() == "text/html"]
    return html.unescape(_TAGS.sub("\n", "\n".join(markup)))[:SCAN_LIMIT]


def _one_line(text: str) -> str:
    """One line of at most ``REASON_CHARS``, without the reply code repeated on each folded
    line of a multi-line SMTP reply ("550-5.1.1 ... 550-5.1.1 ...")."""
    return _REPEATED_CODE.sub("", " ".join(text.split()))[:REASON_CHARS]


def _attached_ids(message: Message) -> list[str]:
    """Message-IDs of the failed message as attached: ``message/rfc822`` or its headers."""
    found = []
    for part in _parts(message):
        kind = part.get_content_type()
        attached: Message | None = None
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            first = payload[0] if isinstance(payload, list) and payload else None
            attached = first if isinstance(first, Message) else None
        elif kind in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            attached = HeaderParser().parsestr(text_of(part))
        if attached is not None:
            found += _ID.findall(header(attached, "Message-ID"))
    return found


def _quoted_ids(text: str, copy_starts: re.Pattern[str] | None) -> list[str]:
    """``Message-ID:`` lines of the failed message quoted in the report's text."""
    start = copy_starts.search(text) if copy_starts else None
    return _MESSAGE_ID_LINE.findall(text[start.end() :] if start else text)


def original_ids(message: Message, text: str, copy_starts: re.Pattern[str] | None) -> list[str]:
    """Where the failed message's Message-ID may be, most trusted first: the attached
    message, a quoted ``Message-ID:`` line, the report's own In-Reply-To."""
    ids = _attached_ids(message) + _quoted_ids(text, copy_starts)
    ids += _ID.findall(header(message, "In-Reply-To"))
    return list(dict.fromkeys(ids))


def smtp_reason(text: str) -> str | None:
    """The first SMTP reply quoted in a report (from its code to the end of the line)."""
    o365 = _O365_REPLY.search(text)
    if o365:
        return _one_line(o365.group(1))
    lines = text.split("\n")
    for pattern in (_SMTP_REPLY, _SMTP_CODE):
        for index, line in enumerate(lines):
            match = pattern.search(line)
            if match:
                said = [line[match.start() :]]
                for more in lines[index + 1 : index + 4]:  # its folded continuation lines
                    if not more[:1].isspace() or not more.strip():
                        break
                    said.append(more)
                return _one_line(" ".join(said))
    return None


def _temporary(reason: str | None) -> bool:
    """A 4xx reply or a 4.x.x status: the server may yet take the message."""
    if not reason:
        return False
    enhanced = _ENHANCED.search(reason)
    if enhanced:
        return enhanced.group(1) == "4"
    code = _SMTP_CODE.match(reason) or _SMTP_REPLY.match(reason)
    return code is not None and code.group(1).startswith("4")


# -- RFC 3464 ---------------------------------------------------------------------------------


def _delivery_status(message: Message) -> list[Message] | None:
    """The field groups of the ``message/delivery-status`` part (per message, then per
    recipient), or None when the message has none."""
    for part in _parts(message):
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list):
                return [group for group in payload if isinstance(group, Message)]
            return [HeaderParser().parsestr(block) for block in str(payload).split("\n\n")]
    return None


def _typed_value(value: str) -> str:
    """``rfc822; ann@example.org`` -> ``ann@example.org``; ``smtp; 550 ...`` -> ``550 ...``."""
    kind, sep, rest = value.partition(";")
    return _one_line(rest if sep and " " not in kind.strip() else value)


def _from_dsn(message: Message, groups: list[Message], text: str) -> Bounce:
    recipients = [g for g in groups if header(g, "Final-Recipient") or header(g, "Action")]
    failed = [g for g in recipients if header(g, "Action").lower() == "failed"]
    chosen = (failed or recipients or [Message()])[0]
    action = header(chosen, "Action").lower()
    status = header(chosen, "Status")
    diagnostic = _typed_value(header(chosen, "Diagnostic-Code"))
    reason = diagnostic or smtp_reason(text) or ""
    if status and status not in reason:
        reason = f"{status} {reason}".strip()
    if action and action != "failed":
        reason = f"{action}: {reason}" if reason else action
    recipient = _typed_value(header(chosen, "Final-Recipient")) or _typed_value(
        header(chosen, "Original-Recipient")
    )
    permanent = action == "failed" and not status.startswith("4")
    if not action:  # no Action: go by the status, else by the report's words
        permanent = not (status.startswith("4") or _temporary(reason))
    return Bounce(
        reason=_one_line(reason or "delivery failed"),
        recipient=recipient or None,
        original_message_ids=tuple(original_ids(message, text, None)),
        permanent=permanent,
    )


# -- the rest ---------------------------------------------------------------------------------


def _failed_recipient(message: Message, form: Form, text: str) -> str | None:
    named = getaddresses([header(message, "X-Failed-Recipients")])
    if named and named[0][1]:
        return named[0][1]
    match = form.recipient.search(text) if form.recipient else None
    return match.group(1) if match else None


def _from_form(message: Message, form: Form, subject: str, text: str) -> Bounce:
    report = text
    copy = form.copy_starts.search(text) if form.copy_starts else None
    if copy:
        report = text[: copy.start()]  # the reason is in the report, not in our quoted message
    reason = smtp_reason(report)
    delayed = bool(form.delayed and (form.delayed.search(subject) or form.delayed.search(report)))
    return Bounce(
        reason=reason or _one_line(f"{form.name}: {subject}" if subject else form.name),
        recipient=_failed_recipient(message, form, report),
        original_message_ids=tuple(original_ids(message, text, form.copy_starts)),
        permanent=not delayed and not _temporary(reason),
    )


def find_bounce(message: Message, *, from_machine: bool) -> Bounce | None:
    """The failure ``message`` reports, or None when it is not a delivery report.

    ``from_machine``: the message is a mail system's (mailer-daemon, postmaster, a null
    Return-Path, ``Auto-Submitted``, ``X-Failed-Recipients``...): only then is a known
    non-standard form read, so a person's "Undeliverable:" forward stays a person's message.
    A standard report is read from anyone.
    """
    text = report_text(message)
    if message.get_content_type() == "multipart/report":
        groups = _delivery_status(message)
        report_type = str(message.get_param("report-type", "") or "").lower()
        if groups is not None or report_type == "delivery-status":
            return _from_dsn(message, groups or [], text)
    if not from_machine:
        return None
    subject = header(message, "Subject")
    for form in FORMS:
        if form.marker.search(subject) or form.marker.search(text):
            return _from_form(message, form, subject, text)
    return None
