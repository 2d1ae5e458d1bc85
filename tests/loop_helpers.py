"""Shared by the closing-the-loop tests (contacts, campaigns, responses, reports, survey web):
writing CSV files and reading the tickets a campaign or a response made. (Their ``cli``
fixture is the one in ``tests/conftest.py``.)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cxdesk.store.models import Team, Ticket, TicketTag


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def ticket_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(Ticket)).one())


def tagged_tickets(engine: Engine, tag: str) -> list[Ticket]:
    with Session(engine) as session:
        tickets = session.exec(
            select(Ticket)
            .join(TicketTag, col(TicketTag.ticket_id) == col(Ticket.id))
            .where(TicketTag.tag == tag)
            .order_by(col(Ticket.id))
        ).all()
        for ticket in tickets:
            session.expunge(ticket)
        return list(tickets)


def team_of(engine: Engine, ticket: Ticket) -> str:
    with Session(engine) as session:
        team = session.get(Team, ticket.team_id)
        assert team is not None
        return team.name
