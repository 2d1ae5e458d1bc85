"""Mail hygiene (RFC 3834): auto-replies, bulk mail and bounces are not people writing.

INTERFACE STUB (issue 14 foundation): the hygiene slice implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

from sqlmodel import Session


@dataclass(frozen=True)
class Bounce:
    """A delivery failure report about a message the desk sent."""

    reason: str
    """One line, e.g. "550 5.1.1 user unknown"."""
    recipient: str | None = None
    """The address that failed, when the report says it."""
    original_message_ids: tuple[str, ...] = ()
    """Message-IDs of the failed message found in the report (ours are signed)."""
    permanent: bool = True


@dataclass(frozen=True)
class Verdict:
    """What kind of message this is, and whether anything automatic may answer it."""

    kind: str
    """``human``; ``auto_reply`` (out-of-office, vacation: logged on the ticket it answers,
    opens and reopens nothing); ``bulk`` (lists, bulk, junk: handled as a person's message
    but never answered automatically); ``bounce``; ``loop`` (our own mail come back: ignored)."""
    reason: str = ""
    """One line naming the header or form that decided it."""
    bounce: Bounce | None = None

    @property
    def may_answer(self) -> bool:
        return self.kind == "human"


def classify(message: EmailMessage) -> Verdict:
    """Tell a person's message from an automatic one (headers, sender, DSN and common forms)."""
    return Verdict(kind="human")


def record_bounce(session: Session, bounce: Bounce) -> str:
    """Mark our bounced message ``bounced`` with the reason, flag the address, raise
    ``message.bounced``; return one line saying what was marked."""
    raise NotImplementedError("record_bounce: the hygiene slice of issue 14")
