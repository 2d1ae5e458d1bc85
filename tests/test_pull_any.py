"""Pull from any of my teams and caps on open tickets (``store.pull``, ``store.caps``) on SQLite
and PostgreSQL: the order across teams, the desk's wait-first setting, what the log says,
caps refusing in one line and changing nothing, and many processes at once (no ticket twice,
one expert's terminals never past their cap)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.errors import QueueEmpty
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.caps import CapReached
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import Event, Ticket, User, simulated_clock
from cxdesk.store.pull import pull_any, pull_next
from tests.cli_helpers import Cli
from tests.desk import build_small_desk
from tests.test_pull_concurrency import ANY, run_workers

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def open_ticket(engine: Engine, title: str, team: str, *, minutes: int, priority: str) -> str:
    """A waiting ticket of ``team`` created ``minutes`` after START."""
    with simulated_clock(lambda: START + timedelta(minutes=minutes)), transaction(engine) as s:
        draft = ops.TicketDraft(title=title, team=team, priority=priority)
        key = ops.create_ticket(s, actor=None, draft=draft).key
    assert key is not None
    return key


def user(engine: Engine, username: str) -> User:
    with read_session(engine) as session:
        return directory.get_user(session, username)


def set_desk(engine: Engine, name: str, value: str) -> None:
    with transaction(engine) as session:
        directory.set_setting(session, name, value)


def titles_pulled(engine: Engine, username: str, count: int) -> list[str]:
    expert = user(engine, username)
    keys = [pull_any(engine, actor=expert).key for _ in range(count)]
    with read_session(engine) as session:
        found = dict(session.exec(select(Ticket.key, Ticket.title)).all())
    return [found[key] for key in keys]


def seed_across_teams(engine: Engine) -> None:
    """maya is on 360 and Stats iQ; Solo's tickets are kenji's only."""
    open_ticket(engine, "solo critical oldest", "Solo", minutes=0, priority="critical")
    open_ticket(engine, "360 low oldest", "360", minutes=1, priority="low")
    open_ticket(engine, "stats high", "Stats iQ", minutes=2, priority="high")
    open_ticket(engine, "360 critical", "360", minutes=3, priority="critical")
    open_ticket(engine, "stats medium", "Stats iQ", minutes=4, priority="medium")
    open_ticket(engine, "360 high newest", "360", minutes=5, priority="high")


def test_any_pull_takes_priority_then_longest_wait_across_my_teams(desk: Engine) -> None:
    seed_across_teams(desk)
    assert titles_pulled(desk, "maya", 5) == [
        "360 critical",
        "stats high",
        "360 high newest",
        "stats medium",
        "360 low oldest",
    ]
    with pytest.raises(QueueEmpty, match=r"^No tickets waiting in your teams' queues$"):
        pull_any(desk, actor=user(desk, "maya"))
    with read_session(desk) as session:
        solo = session.exec(select(Ticket.owner_id).where(Ticket.title == "solo critical oldest"))
        assert solo.all() == [None]


def test_desk_setting_makes_any_pull_wait_first(desk: Engine) -> None:
    seed_across_teams(desk)
    set_desk(desk, "pull_any_order", "wait")
    assert titles_pulled(desk, "maya", 3) == ["360 low oldest", "stats high", "360 critical"]


def test_any_pull_logs_and_names_the_queue_it_waited_in(desk: Engine, cli: Cli) -> None:
    key = open_ticket(desk, "stats only", "Stats iQ", minutes=0, priority="medium")
    result = cli("ticket", "pull", "--any", "--as", "maya")
    assert result.exit_code == 0, result
    assert result.stdout.strip() == key
    with read_session(desk) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        events = session.exec(
            select(Event.kind, Event.to_value, Event.detail)
            .where(Event.ticket_id == ticket.id, col(Event.kind) != "ticket.created")
            .order_by(col(Event.id))
        ).all()
    assert (ticket.pulled_from, ticket.status) == ("Stats iQ", "open")
    assert events == [
        ("ticket.assigned_from_queue", "maya", "Stats iQ"),
        ("ticket.status_changed", "open", None),
    ]


def test_pull_command_needs_a_queue_or_any_not_both(desk: Engine, cli: Cli) -> None:
    for args in ((), ("360", "--any")):
        result = cli("ticket", "pull", *args, "--as", "maya")
        assert result.exit_code == 1, result
        assert result.error_lines == ["Error: Name a queue or give --any (not both)"]
    open_ticket(desk, "waits", "360", minutes=0, priority="medium")
    teamless = cli("ticket", "pull", "--any", "--as", "vera")
    assert teamless.error_lines == ["Error: You are not on a team that has a queue"], teamless


@pytest.mark.parametrize("any_team", [False, True], ids=["queue", "any"])
def test_cap_refuses_a_pull_in_one_line_and_changes_nothing(desk: Engine, any_team: bool) -> None:
    for n in range(4):
        open_ticket(desk, f"t{n}", "360", minutes=n, priority="medium")
    set_desk(desk, "max_open_tickets", "2")
    maya = user(desk, "maya")
    for _ in range(2):
        pull_next(desk, actor=maya, queue_name=None if any_team else "360")
    with read_session(desk) as session:
        before = session.exec(select(Ticket.id, Ticket.owner_id, Ticket.status)).all()
        events = len(session.exec(select(Event.id)).all())
    with pytest.raises(CapReached, match=r"^maya has 2 open tickets; the cap is 2$"):
        pull_next(desk, actor=maya, queue_name=None if any_team else "360")
    with read_session(desk) as session:
        assert session.exec(select(Ticket.id, Ticket.owner_id, Ticket.status)).all() == before
        assert len(session.exec(select(Event.id)).all()) == events
    # omar is under the same desk cap but holds nothing yet.
    assert pull_next(desk, actor=user(desk, "omar"), queue_name="360")


def test_user_cap_overrides_the_desk(desk: Engine, cli: Cli) -> None:
    for n in range(3):
        open_ticket(desk, f"t{n}", "360", minutes=n, priority="medium")
    set_desk(desk, "max_open_tickets", "1")
    result = cli("user", "update", "maya", "--max-open", "none")
    assert (result.exit_code, result.stdout.strip()) == (
        0,
        "maya's cap on open tickets: none.",
    ), result
    assert cli("ticket", "pull", "360", "--as", "maya").exit_code == 0
    assert cli("ticket", "pull", "360", "--as", "maya").exit_code == 0
    assert cli("user", "update", "maya", "--max-open", "2").exit_code == 0
    refused = cli("ticket", "pull", "--any", "--as", "maya")
    assert (refused.exit_code, refused.error_lines) == (
        1,
        ["Error: maya has 2 open tickets; the cap is 2"],
    ), refused
    result = cli("user", "update", "maya", "--max-open", "default")
    assert result.stdout.strip() == "maya's cap on open tickets: the desk's (1).", result
    bad = cli("user", "update", "maya", "--max-open", "-3")
    assert bad.exit_code == 1 and bad.error_lines == [
        "Error: max-open: must be a whole number from 1 to 1000, none or default"
    ], bad
    not_admin = cli("user", "update", "omar", "--max-open", "9", "--as", "maya")
    assert not_admin.exit_code == 1, not_admin
    with read_session(desk) as session:
        assert directory.get_user(session, "omar").max_open_tickets is None


# -- many processes at the same instant --------------------------------------------------------


@pytest.mark.slow
def test_concurrent_any_pulls_give_every_ticket_to_exactly_one_expert(
    db_url: str, desk: Engine
) -> None:
    teams = ("360", "Stats iQ", "Solo")
    for n in range(120):
        open_ticket(desk, f"t{n}", teams[n % 3], minutes=n % 7, priority=("low", "high")[n % 2])
    reports = run_workers(db_url, ["maya", "omar", "kenji"], ANY)
    claims = Counter(ticket_id for report in reports for ticket_id in report["claimed"])
    assert not [t for t, n in claims.items() if n > 1], claims
    with read_session(desk) as session:
        owners = dict(session.exec(select(Ticket.id, Ticket.owner_id)).all())
        pulls = session.exec(
            select(Event.ticket_id).where(Event.kind == "ticket.assigned_from_queue")
        ).all()
    assert len(claims) == 120 and all(owners[t] is not None for t in owners)
    assert sorted(pulls) == sorted(owners)


@pytest.mark.slow
@pytest.mark.parametrize("queue", ["360", ANY])
def test_one_experts_racing_terminals_never_pass_the_cap(
    db_url: str, desk: Engine, queue: str
) -> None:
    for n in range(40):
        open_ticket(desk, f"t{n}", "360", minutes=n, priority="medium")
    set_desk(desk, "max_open_tickets", "3")
    reports = run_workers(db_url, [f"omar#{n}" for n in range(6)], queue)
    assert sum(len(report["claimed"]) for report in reports) == 3, reports
    with read_session(desk) as session:
        omar = directory.get_user(session, "omar")
        held = session.exec(select(Ticket.id).where(Ticket.owner_id == omar.id)).all()
    assert len(held) == 3


def test_a_seed_sets_the_cap_and_the_any_order(desk: Engine, cli: Cli, tmp_path: Path) -> None:
    seed = tmp_path / "desk.toml"
    seed.write_text('[desk]\nmax_open_tickets = 0\npull_any_order = "fast"\n')
    refused = cli("seed", str(seed))
    assert refused.exit_code == 1, refused
    assert "max_open_tickets must be a whole number of open tickets from 1 to 1000" in str(refused)
    assert "[desk]: pull_any_order must be one of priority, wait" in str(refused)
    seed.write_text('[desk]\nmax_open_tickets = 1\npull_any_order = "wait"\n')
    assert cli("seed", str(seed)).exit_code == 0
    open_ticket(desk, "low", "360", minutes=0, priority="low")
    open_ticket(desk, "critical", "360", minutes=1, priority="critical")
    assert titles_pulled(desk, "maya", 1) == ["low"]  # wait first
    with pytest.raises(CapReached, match=r"^maya has 1 open ticket; the cap is 1$"):
        pull_any(desk, actor=user(desk, "maya"))


def test_a_cap_holds_for_the_pulls_of_one_connection(desk: Engine) -> None:
    """A connection that pulled before knows its queue and claims in one statement, unless
    a cap may apply (the claim's own condition): a cap set meanwhile is still honoured."""
    for n in range(4):
        open_ticket(desk, f"t{n}", "360", minutes=n, priority="medium")
    maya, omar = user(desk, "maya"), user(desk, "omar")
    with desk.connect() as connection:
        pull_next(connection, actor=maya, queue_name="360")  # no cap: the queue is now known
        set_desk(desk, "max_open_tickets", "2")
        pull_next(connection, actor=maya, queue_name="360")
        with pytest.raises(CapReached, match=r"^maya has 2 open tickets; the cap is 2$"):
            pull_next(connection, actor=maya, queue_name="360")
        with transaction(desk) as session:  # omar's own: none, whatever the desk says
            session.get(User, omar.id).max_open_tickets = 0  # type: ignore[union-attr]
        for _ in range(2):
            pull_next(connection, actor=omar, queue_name="360")
    with read_session(desk) as session:
        owners = Counter(session.exec(select(Ticket.owner_id)).all())
    assert owners == {maya.id: 2, omar.id: 2}
