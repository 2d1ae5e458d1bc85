"""Message-IDs the desk signs, so a reply can be matched to its ticket and a forgery cannot.

Every email the desk sends carries ``<cx.<ticket>.<outbox>.<signature>@<domain>>``: the
signature is an HMAC-SHA256 over the ticket and outbox ids with the desk's secret (the one
survey links use). An inbound message joins a ticket through its In-Reply-To/References only
when one of them verifies here; a made-up or altered id verifies as nothing. The id is
deterministic per outbox row, so a message sent twice (an unknown outcome) repeats it.
Messages without a ticket use ticket 0.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlmodel import Session

from cxdesk.store.survey_links import desk_secret

_SIGNATURE_CHARS = 22  # 128 bits of the HMAC, base64url
_SIGNED = re.compile(
    r"<?cx\.(?P<ticket>[0-9]{1,18})\.(?P<outbox>[0-9]{1,18})\.(?P<sig>[A-Za-z0-9_-]{22})@[^<>\s]+>?"
)
_ANY_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class SignedId:
    """What a verified Message-ID names."""

    ticket_id: int | None
    """None: the message had no ticket."""
    outbox_id: int


def _signature(secret: bytes, ticket_id: int, outbox_id: int) -> str:
    digest = hmac.new(secret, f"message-id\n{ticket_id}\n{outbox_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:_SIGNATURE_CHARS]


def domain_of(address: str) -> str:
    """The ASCII domain for Message-IDs from a sender address (``cxdesk.invalid`` if none)."""
    domain = address.rpartition("@")[2].strip(" >") or "cxdesk.invalid"
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "cxdesk.invalid"


def sign(secret: bytes, *, ticket_id: int | None, outbox_id: int, domain: str) -> str:
    """The Message-ID (with angle brackets) for an outbox row."""
    ticket = ticket_id or 0
    return f"<cx.{ticket}.{outbox_id}.{_signature(secret, ticket, outbox_id)}@{domain}>"


def verify(secret: bytes, value: str) -> SignedId | None:
    """What one Message-ID names, or None when the desk did not make it (or it was changed)."""
    match = _SIGNED.fullmatch(value.strip())
    if match is None:
        return None
    ticket, outbox = int(match["ticket"]), int(match["outbox"])
    if not hmac.compare_digest(match["sig"], _signature(secret, ticket, outbox)):
        return None
    return SignedId(ticket_id=ticket or None, outbox_id=outbox)


def message_ids_in(header: str | None) -> list[str]:
    """The ``<...>`` ids in an In-Reply-To or References header, in order."""
    return _ANY_ID.findall(header or "")


def verified_in(session: Session, *headers: str | None) -> list[SignedId]:
    """Our signed ids among the given headers' ids, last (newest) first; forgeries dropped."""
    secret = desk_secret(session)
    found = []
    for header in headers:
        for value in message_ids_in(header):
            signed = verify(secret, value)
            if signed is not None:
                found.append(signed)
    return found[::-1]
