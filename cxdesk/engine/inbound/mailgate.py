"""One raw email in, handled once: the path ``cxdesk mail import`` and ``mail fetch`` share.

INTERFACE STUB (issue 14 foundation): the mail-import slice implements it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine


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


def receive_email(engine: Engine, raw: bytes) -> Received:
    """Parse, classify and route one message in its own transaction (idempotent by
    Message-ID); ``RefusedMail`` when it cannot be handled."""
    raise NotImplementedError("receive_email: the mail-import slice of issue 14")
