"""The hall board's content: the walk-in customers waiting and those just called, as a screen
in a public place shows them (``cxdesk board``, ``GET /board`` on the public web server).

Only walk-ins (``Source.checkin``): a campaign's or a hand-opened ticket waits in the same
queues but its customer is not in the hall. A waiting walk-in shows its place in its team's
first queue (``store.waiting``: the tickets of other sources ahead count, since pulls take
them in the same order) and its estimated wait. "Now serving" lists the walk-ins pulled in the
last ``SERVING_SPAN`` that are still open, newest first, with the expert's first name.

Anyone may read the hall, so a customer is shown by ``hall_name`` only (first name and the
initial of the last, letters only: never a surname, an email address or a phone number typed
as a name; a Japanese customer's family name and 様, as Japanese waiting rooms call people:
a kanji given name has no initial, and a given name is for those close to you), and a
ticket's key never leaves this module's callers' memory (the TUI keys its rows by it; the web
page does not print it). Reads only: one statement for the called, and per team with
walk-ins waiting one for the positions plus the team's pace (``team_pace``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from cxdesk.names import family_name_first
from cxdesk.store.models import (
    Queue,
    QueueOrder,
    Source,
    Status,
    StatusCategory,
    Team,
    Ticket,
    User,
    utcnow,
)
from cxdesk.store.pull import WAITING, queue_order
from cxdesk.store.waiting import _aware as aware
from cxdesk.store.waiting import _last_pull as last_pull
from cxdesk.store.waiting import team_pace

SERVING_SPAN = timedelta(minutes=15)
"""A walk-in pulled this recently (and not resolved) is "now serving"."""
WALKIN_SPAN = timedelta(days=1)
"""Walk-ins created this recently only: a hall's day (and the read stays on ``ix_ticket_created``
for the called ones)."""
WAITING_PER_TEAM = 12
"""Waiting walk-ins shown per team at most (a hall screen holds a few dozen lines)."""
SERVING_SHOWN = 6
NAME_CHARS = 20
"""A first name is cut to this many characters."""
GUEST = "Guest"
"""Shown for a name without a word of letters (an email address or a phone number)."""
HONORIFIC = "様"
"""After a Japanese family name on the board (``hall_name``)."""
_OWNER = aliased(User, name="hall_owner")


@dataclass(frozen=True)
class HallWaiting:
    key: str
    """For the terminal's row keys; never printed on the board."""
    customer: str
    team: str
    position: int
    wait_minutes: float | None


@dataclass(frozen=True)
class HallServing:
    key: str
    customer: str
    expert: str
    """The expert's first name."""
    team: str
    since: datetime


@dataclass(frozen=True)
class HallBoard:
    waiting: tuple[HallWaiting, ...]
    """By team name, then position."""
    serving: tuple[HallServing, ...]
    """Most recently called first."""


def _words(text: str) -> list[str]:
    """The words made of letters (an apostrophe, hyphen or dot inside: O'Neil, Jean-Luc)."""
    return [
        w for w in text.split() if w.replace("'", "").replace("-", "").replace(".", "").isalpha()
    ]


def hall_name(full_name: str, language: str | None = None) -> str:
    """``Ada Lovelace`` -> ``Ada L.``; ``Cher`` -> ``Cher``; ``ada@example.com`` or a phone
    number -> ``Guest``: what a public screen may say of a customer. In a language that writes
    the family name first (ja), or a name in kanji or kana (``cxdesk.names``): ``山田 太郎`` ->
    ``山田 様``."""
    words = _words(full_name)
    if not words:
        return GUEST
    first = words[0][:NAME_CHARS]
    if family_name_first(language, full_name):  # the family name (written first) and 様
        return f"{first} {HONORIFIC}"
    return first if len(words) == 1 else f"{first} {words[-1][0].upper()}."


def first_name(full_name: str, fallback: str = "An expert") -> str:
    words = _words(full_name)
    return words[0][:NAME_CHARS] if words else fallback


def _team_queues(session: Session) -> list[tuple[int, str, bool]]:
    """(team id, team name, by priority) of each team's first queue, by team name."""
    first: dict[int, tuple[int, str, bool]] = {}
    rows = session.exec(
        select(Queue.team_id, Team.name, Queue.ordering)
        .join(Team, col(Team.id) == col(Queue.team_id))
        .order_by(col(Queue.id))
    ).all()
    for team_id, team, ordering in rows:
        first.setdefault(team_id, (team_id, team, ordering == QueueOrder.priority))
    return sorted(first.values(), key=lambda row: row[1])


def _team_waiting(
    session: Session, team_id: int, team: str, by_priority: bool, now: datetime
) -> list[HallWaiting]:
    numbered = (
        WAITING.params(team=team_id)
        .add_columns(
            func.row_number().over(order_by=queue_order(by_priority)).label("position"),
            col(Ticket.key),
            col(Ticket.customer_name),
            col(Ticket.customer_language),
            col(Ticket.source),
            col(Ticket.created_at),
        )
        .subquery()
    )
    rows = session.execute(
        sa_select(
            numbered.c.key,
            numbered.c.customer_name,
            numbered.c.position,
            numbered.c.customer_language,
        )  # fmt: skip
        .where(numbered.c.source == Source.checkin, numbered.c.created_at >= now - WALKIN_SPAN)
        .order_by(numbered.c.position)
        .limit(WAITING_PER_TEAM)
    ).all()
    if not rows:
        return []
    waits = team_pace(session, team_id, now=now).waits(int(rows[-1].position))
    return [
        HallWaiting(
            key or "", hall_name(name, language), team, int(position), waits[int(position) - 1]
        )
        for key, name, position, language in rows
    ]


def _serving(session: Session, now: datetime) -> list[HallServing]:
    pulled = last_pull(col(Ticket.updated_at)).label("pulled")
    rows = session.execute(
        sa_select(
            col(Ticket.key),
            col(Ticket.customer_name),
            col(Ticket.customer_language),
            col(_OWNER.name),
            col(Team.name),
            pulled,
            col(Ticket.updated_at),
        )
        .join(Status, col(Status.name) == col(Ticket.status))
        .join(_OWNER, col(_OWNER.id) == col(Ticket.owner_id))
        .join(Team, col(Team.id) == col(Ticket.team_id))
        .where(
            col(Ticket.created_at) >= now - WALKIN_SPAN,
            col(Ticket.source) == Source.checkin,
            col(Status.category) == StatusCategory.open,
            col(Ticket.updated_at) >= now - SERVING_SPAN,
        )
        .order_by(col(Ticket.updated_at).desc())
        .limit(SERVING_SHOWN * 5)
    ).all()
    found = []
    for key, customer, language, expert, team, pulled_at, updated_at in rows:
        since = aware(pulled_at if pulled_at is not None else updated_at)  # assigned, not pulled
        if since >= now - SERVING_SPAN:
            found.append(
                HallServing(
                    key or "", hall_name(customer, language), first_name(expert), team, since
                )
            )
    found.sort(key=lambda row: row.since, reverse=True)
    return found[:SERVING_SHOWN]


def hall_board(session: Session, *, now: datetime | None = None) -> HallBoard:
    """What the hall board shows at ``now`` (default: the desk's clock)."""
    now = now or utcnow()
    waiting = [
        row
        for team_id, team, by_priority in _team_queues(session)
        for row in _team_waiting(session, team_id, team, by_priority, now)
    ]
    return HallBoard(tuple(waiting), tuple(_serving(session, now)))
