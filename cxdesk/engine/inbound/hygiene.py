"""Mail hygiene (RFC 3834): auto-replies, bulk mail and bounces are not people writing.

``classify`` tells a person's message from an automatic one, in this order:

- ``loop``: our own mail come back (an ``X-Loop`` naming the desk's address, or From the
  desk's address): ignored;
- ``bounce``: a delivery failure report (``bounces.find_bounce``: RFC 3464 and the common
  non-standard forms), with what it found in ``Verdict.bounce``. A report of a *delay* (4.x.x,
  "still being retried") or of a success is not a bounce of the message: it is ``auto_reply``
  (system mail about a message that may still arrive: logged, opens and reopens nothing,
  marks nothing), its ``bounce`` set with ``permanent`` False;
- ``auto_reply``: out-of-office and vacation answers: ``Auto-Submitted: auto-replied`` (or
  ``auto-generated`` with an out-of-office subject), ``X-Autoreply``, ``X-Autorespond``,
  ``Precedence: auto_reply``, ``X-MS-Exchange-Inbox-Rules-Loop``, Microsoft's
  ``X-Auto-Response-Suppress`` with an out-of-office subject ("Automatic reply:"...);
- ``bulk``: mail from systems and lists: any other ``Auto-Submitted`` but ``no``,
  ``Precedence: bulk|junk|list``, ``List-Id``, ``List-Unsubscribe``,
  ``X-Auto-Response-Suppress``, a null ``Return-Path`` (``<>``), or a sender that is a
  machine (mailer-daemon, postmaster, noreply, no-reply, do-not-reply...);
- ``human``: everything else. Only ``human`` may be answered automatically
  (``Verdict.may_answer``; ``InboundMessage.may_answer`` keeps it).

An out-of-office subject alone ("Automatic reply: ...") is still a person's message: people
write such subjects; only with an automatic header is it an auto-reply.

The desk's own address, which our outgoing ``X-Loop`` carries, is ``desk_address()``: the
lower-case addr-spec of the ``[smtp] mail_from`` setting (``CXDESK_MAIL_FROM``), the one
setting both sides read (the composer writes the same value into ``X-Loop``).

``record_bounce`` marks the outbox row a bounce names ``bounced``, flags the address and
raises ``message.bounced`` (a workflow event: e.g. fall back to SMS). Only a Message-ID the
desk signed (``store.message_ids``) marks anything: a forged report marks nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from sqlmodel import Session

from cxdesk.engine.channels.mail_compose import loop_address
from cxdesk.engine.inbound.bounces import Bounce, find_bounce, header
from cxdesk.errors import DeskError
from cxdesk.store.events import record_event
from cxdesk.store.message_ids import verify
from cxdesk.store.models import AddressFlag, OutboxMessage, utcnow
from cxdesk.store.survey_links import desk_secret

__all__ = ["Bounce", "Verdict", "classify", "desk_address", "record_bounce"]

MACHINE_SENDERS = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)(?:[+-].*)?$",
    re.I,
)
"""Local parts of senders that are mail systems, not people."""
OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto[- ]?reply|auto[- ]?response|out of (?:the )?office"
    r"(?: auto ?reply)?|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique"
    r"|respuesta autom[áa]tica|risposta automatica|resposta autom[áa]tica"
    r"|automatisch antwoord|afwezigheidsmelding|vacation reply)\s*:",
    re.I,
)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder",
                       "X-MS-Exchange-Inbox-Rules-Loop")  # fmt: skip
_LIST_HEADERS = ("List-Id", "List-Unsubscribe")
_REPORT_HEADERS = ("X-Failed-Recipients", "X-MS-Exchange-Message-Is-Ndr")
"""Headers only mail systems put on delivery reports (Exim, Exchange)."""


@dataclass(frozen=True)
class Verdict:
    """What kind of message this is, and whether anything automatic may answer it."""

    kind: str
    """``human``; ``auto_reply`` (out-of-office, vacation, delay reports: logged on the ticket
    it answers, opens and reopens nothing); ``bulk`` (lists, bulk, junk, system mail: handled
    as a person's message but never answered automatically); ``bounce``; ``loop`` (our own
    mail come back: ignored)."""
    reason: str = ""
    """One line naming the header or form that decided it."""
    bounce: Bounce | None = None
    """For ``bounce`` (and a delay report, ``auto_reply``): what the report says."""

    @property
    def may_answer(self) -> bool:
        return self.kind == "human"


def desk_address(file_values: object | None = None) -> str:
    """The desk's own address, lower case ("" when none is set): the addr-spec of ``[smtp]
    mail_from`` as the composer reads it for our outgoing ``X-Loop``
    (``mail_compose.loop_address``), which an incoming one is compared with.
    ``file_values``: the config file's ``[smtp]`` table (default: read the settings)."""
    from cxdesk.config import load_settings
    from cxdesk.engine.channels.email import MailSettings

    try:
        smtp = load_settings().extra.get("smtp", {}) if file_values is None else file_values
        mail_from = MailSettings.load(smtp if isinstance(smtp, dict) else {}).mail_from
    except DeskError:
        return ""  # the settings are broken: sending says so; here there is just no address
    return loop_address(mail_from)


def _addresses(message: Message, name: str, *, every: bool = False) -> list[str]:
    """The addresses in a header (``every``: in each of its occurrences), lower case."""
    try:
        values = [str(v) for v in message.get_all(name) or []] if every else [header(message, name)]
    except Exception:  # noqa: BLE001 - a malformed header of a hostile message is "absent"
        values = []
    return [address.lower() for _, address in getaddresses(values) if address]


def _token(message: Message, name: str) -> str:
    """A header's first word, lower case: ``Auto-Submitted: auto-replied; owner=x`` ->
    ``auto-replied``."""
    return header(message, name).split(";")[0].strip().lower()


def _loop(message: Message, own: Collection[str]) -> str | None:
    if not own:
        return None
    looped = set(_addresses(message, "X-Loop", every=True))
    if looped & set(own):
        return f"X-Loop: {', '.join(sorted(looped & set(own)))}"
    if any(address in own for address in _addresses(message, "From")):
        return "sent from the desk's own address"
    return None


def _machine_sender(message: Message) -> str | None:
    if header(message, "Return-Path").replace(" ", "") == "<>":
        return "Return-Path: <> (a mail system's null sender)"
    for address in _addresses(message, "From") + _addresses(message, "Sender"):
        if MACHINE_SENDERS.match(address.rpartition("@")[0]):
            return f"from {address} (a mail system, not a person)"
    return None


def _auto_reply(message: Message, auto_submitted: str, out_of_office: bool) -> str | None:
    if auto_submitted == "auto-replied":
        return "Auto-Submitted: auto-replied"
    for name in _AUTO_REPLY_HEADERS:
        if header(message, name):
            return f"{name}: {header(message, name)[:100]}"
    if _token(message, "Precedence") == "auto_reply":
        return "Precedence: auto_reply"
    if out_of_office and auto_submitted not in ("", "no"):
        return f"Auto-Submitted: {auto_submitted} with an out-of-office subject"
    if out_of_office and header(message, "X-Auto-Response-Suppress"):
        return "X-Auto-Response-Suppress with an out-of-office subject"
    return None


def _bulk(message: Message, auto_submitted: str) -> str | None:
    if auto_submitted not in ("", "no"):
        return f"Auto-Submitted: {auto_submitted}"
    precedence = _token(message, "Precedence")
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in (*_LIST_HEADERS, "X-Auto-Response-Suppress"):
        if header(message, name):
            return f"{name}: {header(message, name)[:100]}"
    return None


def classify(message: Message, *, own_addresses: Collection[str] | None = None) -> Verdict:
    """Tell a person's message from an automatic one (headers, sender, DSN and common forms).

    ``own_addresses``: the desk's addresses for loop detection (default ``desk_address()``).
    """
    own = [desk_address()] if own_addresses is None else [a.lower() for a in own_addresses]
    own = [address for address in own if address]
    loop = _loop(message, own)
    if loop:
        return Verdict(kind="loop", reason=loop)
    machine = _machine_sender(message)
    auto_submitted = _token(message, "Auto-Submitted")
    automatic = (
        machine is not None
        or auto_submitted not in ("", "no")
        or any(name in message for name in _REPORT_HEADERS)
    )
    bounce = find_bounce(message, from_machine=automatic)
    if bounce is not None:
        if bounce.permanent:
            return Verdict(kind="bounce", reason=f"delivery failed: {bounce.reason}", bounce=bounce)
        return Verdict(kind="auto_reply", reason=f"delivery report, not a failure: "
                       f"{bounce.reason}", bounce=bounce)  # fmt: skip
    out_of_office = bool(OUT_OF_OFFICE_SUBJECT.match(header(message, "Subject")))
    reason = _auto_reply(message, auto_submitted, out_of_office)
    if reason:
        return Verdict(kind="auto_reply", reason=reason)
    reason = _bulk(message, auto_submitted) or machine
    if reason:
        return Verdict(kind="bulk", reason=reason)
    return Verdict(kind="human")


# -- recording a bounce -----------------------------------------------------------------------


def _bounced_row(session: Session, bounce: Bounce) -> OutboxMessage | None:
    """The outbox row of the first id in the report that the desk signed (and that names a
    row of that ticket); None when no id verifies."""
    secret = desk_secret(session)
    for value in bounce.original_message_ids:
        signed = verify(secret, value)
        if signed is None:
            continue
        row = session.get(OutboxMessage, signed.outbox_id, with_for_update=True)
        if row is not None and row.ticket_id == signed.ticket_id and row.channel == "email":
            return row
    return None


def flag_address(session: Session, *, channel: str, address: str, kind: str, reason: str) -> None:
    """Flag an address (``AddressFlag``), or renew the reason of its flag."""
    key = (channel, address.strip().lower()[:320], kind)
    flag = session.get(AddressFlag, key) or AddressFlag(channel=key[0], address=key[1], kind=key[2])
    flag.reason, flag.created_at = reason[:500], utcnow()
    session.add(flag)
    session.flush()


def record_bounce(session: Session, bounce: Bounce) -> str:
    """Mark our bounced message ``bounced`` with the reason, flag the address, raise
    ``message.bounced``; return one line saying what was marked.

    Only a permanent failure of a message whose signed Message-ID the report names marks
    anything; the address flagged is the one the desk sent to (the report's recipient may be
    where it was forwarded). A second report of the same message marks nothing new."""
    if not bounce.permanent:
        return f"delivery delayed, nothing marked: {bounce.reason}"
    row = _bounced_row(session, bounce)
    if row is None:
        about = f" to {bounce.recipient}" if bounce.recipient else ""
        return f"bounce{about} names no message of ours, nothing marked: {bounce.reason}"
    if row.status == "bounced":
        return f"outbox #{row.id} to {row.to_addr} was already marked bounced"
    row.status, row.last_error = "bounced", bounce.reason[:500]
    row.claimed_until = None  # a deliverer still holding it can no longer mark it sent
    session.add(row)
    session.flush()
    address = parseaddr(row.to_addr)[1] or row.to_addr
    flag_address(session, channel="email", address=address, kind="bounced", reason=bounce.reason)
    record_event(
        session,
        kind="message.bounced",
        actor=None,
        ticket_id=row.ticket_id,
        field_name="email",
        to_value=row.to_addr,
        detail=f"outbox #{row.id}: {bounce.reason}",
    )
    return f"outbox #{row.id} to {row.to_addr} bounced: {bounce.reason}"
