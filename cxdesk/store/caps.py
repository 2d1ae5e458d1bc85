"""Caps on an expert's open tickets, and the order of a pull from any of an expert's teams.

A cap is how many open tickets (unresolved, owned) an expert may hold before a pull is refused:
the desk's default (setting ``max_open_tickets``: a whole number, or absent / ``none`` for no
cap) unless the user has their own (``user.max_open_tickets``: None follows the desk, 0 is no
cap for this user, N is their cap). The pull checks it in its own claim (``store.pull``), so
two terminals of one expert pulling at the same instant cannot pass it together.

``pull_any_order`` says what "most urgent" means to a pull from any of an expert's teams:
``priority`` (default: priority, then the longest wait) or ``wait`` (the longest wait).
"""

from __future__ import annotations

from sqlmodel import Session

from cxdesk.errors import DeskError, ValidationFailed
from cxdesk.i18n import _
from cxdesk.store.directory import get_setting, get_user, require_admin
from cxdesk.store.models import User

CAP_SETTING = "max_open_tickets"
ANY_ORDER_SETTING = "pull_any_order"
ANY_ORDERS = ("priority", "wait")
NO_CAP = "none"
"""What an admin types for no cap (``cxdesk user update USER --max-open none``)."""
DESK_CAP = "default"
"""What an admin types for "follow the desk's cap" (``--max-open default``)."""
UNCAPPED = 0
"""``user.max_open_tickets`` of a user the desk's cap does not apply to."""
HIGHEST_CAP = 1000


class CapReached(DeskError):
    """A pull refused: the expert already holds as many open tickets as their cap."""


def desk_cap(value: str | None) -> int | None:
    """The desk's cap from its setting's text: None (no cap) unless a whole number >= 1."""
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def effective_cap(user_cap: int | None, desk_value: str | None) -> int | None:
    """The cap that applies to a user: their own, else the desk's; None is no cap."""
    if user_cap is None:
        return desk_cap(desk_value)
    return None if user_cap == UNCAPPED else user_cap


def cap_of(session: Session, user: User) -> int | None:
    """The cap that applies to ``user`` now (None: no cap)."""
    return effective_cap(user.max_open_tickets, get_setting(session, CAP_SETTING))


def cap_message(username: str, held: int, cap: int) -> str:
    """The one line a refused pull says."""
    tickets = "open ticket" if held == 1 else "open tickets"
    return f"{username} has {held} {tickets}; the cap is {cap}"


def wait_first(value: str | None) -> bool:
    """Whether the desk's ``pull_any_order`` is ``wait`` (anything else is priority first)."""
    return (value or "").strip() == "wait"


def parse_max_open(text: str) -> int | None:
    """``--max-open``'s value as the column stores it: N, ``none`` (0), ``default`` (None)."""
    word = text.strip().lower()
    if word == NO_CAP:
        return UNCAPPED
    if word == DESK_CAP:
        return None
    if word.isascii() and word.isdigit() and 1 <= int(word) <= HIGHEST_CAP:
        return int(word)
    raise ValidationFailed(
        {
            "max-open": _("must be a whole number from 1 to {highest}, none or default").format(
                highest=HIGHEST_CAP
            )
        }
    )


def set_user_cap(session: Session, *, actor: User | None, username: str, cap: int | None) -> User:
    """Give a user their own cap (``parse_max_open``'s value); admins only."""
    require_admin(actor)
    user = get_user(session, username)
    user.max_open_tickets = cap
    session.add(user)
    session.flush()
    return user


def describe_cap(user_cap: int | None, desk_value: str | None) -> str:
    """A user's cap in words, for the CLI's answer: "3", "none", "the desk's (none)"."""
    if user_cap is None:
        found = desk_cap(desk_value)
        return f"the desk's ({found if found is not None else NO_CAP})"
    return NO_CAP if user_cap == UNCAPPED else str(user_cap)
