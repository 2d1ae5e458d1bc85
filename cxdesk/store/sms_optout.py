"""Numbers that opted out of SMS: STOP and START, and the check before any SMS goes out.

A customer who texts one of Twilio's opt-out keywords (``OPT_OUT_KEYWORDS``: the whole message,
trimmed, in any case) is no longer sent SMS by Twilio (error 21610) until they text an opt-in
keyword (``OPT_IN_KEYWORDS``). The desk mirrors that state, so it neither queues nor sends what
Twilio would refuse, and says so on the ticket: an opted-out number is an
``AddressFlag(channel="sms", address=<E.164>, kind="opted_out")`` whose ``reason`` says when
and by which keyword.

- ``opt_out`` / ``opt_in`` write or remove the flag (and say whether it changed);
- ``opt_out_reason(session, to)``: why an SMS to ``to`` must not go out, or None; ``to`` is read
  in the desk's phone region (``phone_region``) as the desk stores phones;
- ``opted_out_among(session, numbers)``: the same for a batch, in one query (the deliverer asks
  it for each claimed batch of SMS, ``cxdesk.engine.staleness``).

An opt-in keyword is one only while the number is opted out: "YES" answering an expert's
question is a message like any other (``keyword_of`` says what the text would be, the caller
decides with ``opt_out_reason``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from cxdesk.store.directory import get_setting
from cxdesk.store.models import AddressFlag, utcnow
from cxdesk.store.phones import normalise_phone
from cxdesk.store.prepared import Prepared

CHANNEL, KIND = "sms", "opted_out"
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
"""Twilio's default opt-out keywords for long codes (Twilio stops sending on each of them)."""
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
"""Twilio's default opt-in keywords: sending is allowed again."""


def keyword_of(body: str) -> str | None:
    """``"out"`` or ``"in"`` when the whole message (trimmed, any case) is such a keyword."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "out"
    if word in OPT_IN_KEYWORDS:
        return "in"
    return None


def sms_address(session: Session, number: str, *, region: str | None = None) -> str:
    """``number`` as the desk stores phones (E.164, read in the desk's region), or as given
    (trimmed) when it is not a phone number (a short code, an alphanumeric sender)."""
    text = number.strip()
    try:
        return normalise_phone(text, region or get_setting(session, "phone_region"))
    except ValueError:
        return text


def _flag(session: Session, address: str) -> AddressFlag | None:
    return session.get(AddressFlag, (CHANNEL, address, KIND))


def opt_out(session: Session, number: str, *, reason: str) -> bool:
    """Flag ``number`` (E.164) as opted out; False if it already was."""
    if _flag(session, number) is not None:
        return False
    session.add(AddressFlag(channel=CHANNEL, address=number, kind=KIND, reason=reason[:500]))
    session.flush()
    return True


def opt_in(session: Session, number: str) -> bool:
    """Remove ``number``'s opt-out; False if it had none."""
    flag = _flag(session, number)
    if flag is None:
        return False
    session.delete(flag)
    session.flush()
    return True


def _reason(address: str, reason: str | None) -> str:
    return f"{address} opted out of SMS ({reason or 'opted out'})"


_OPTED_OUT = Prepared(
    select(col(AddressFlag.reason)).where(
        col(AddressFlag.channel) == CHANNEL,
        col(AddressFlag.address) == bindparam("address"),
        col(AddressFlag.kind) == KIND,
    )
)
"""A flag's reason (one primary-key read, compiled once: every check-in's SMS asks)."""


def opt_out_reason(session: Session, to: str) -> str | None:
    """Why no SMS may go to ``to`` (it opted out: when, by which keyword), or None."""
    address = sms_address(session, to)
    flagged = _OPTED_OUT.rows(session, {"address": address}) if address else []
    if not flagged:
        return None
    return _reason(address, flagged[0][0])


def opted_out_among(session: Session, numbers: Iterable[str]) -> dict[str, str]:
    """Of ``numbers`` (as written on outbox rows), those opted out, each with why; one query."""
    region = get_setting(session, "phone_region")
    addresses = {n: sms_address(session, n, region=region) for n in set(numbers)}
    wanted = {a for a in addresses.values() if a}
    if not wanted:
        return {}
    flags = {
        f.address: f
        for f in session.exec(
            select(AddressFlag).where(
                AddressFlag.channel == CHANNEL,
                AddressFlag.kind == KIND,
                col(AddressFlag.address).in_(wanted),
            )
        )
    }
    return {n: _reason(a, flags[a].reason) for n, a in addresses.items() if a in flags}


def opted_out_reason_text(keyword: str) -> str:
    """The flag's reason for a keyword received now."""
    return f"{keyword.strip().upper()} received {utcnow():%Y-%m-%d %H:%M} UTC"
