"""Shared by the closing-the-loop tests (contacts, campaigns, responses, reports, survey web):
running the CLI on the test's database and writing CSV files.

Each test module defines its ``cli`` fixture as ``yield from desk_cli(db_url, monkeypatch,
capsys)``: one place for the setup, without importing fixtures across test modules.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cxdesk.cli import common
from cxdesk.store.models import Team, Ticket, TicketTag
from tests.cli_helpers import Cli, run_main


def desk_cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    """``cli("contact", "list")`` runs cxdesk on this test's database, as a user's shell would."""
    monkeypatch.setenv("CXDESK_DATABASE_URL", db_url)
    for console in (common.console, common.err_console):
        monkeypatch.setattr(console, "width", 200)
    yield partial(run_main, capsys)
    common.engine_for(db_url).dispose()
    common.engine_for.cache_clear()


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
