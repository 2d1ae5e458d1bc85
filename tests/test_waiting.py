"""Positions and wait estimates (``cxdesk.store.waiting``) on SQLite and PostgreSQL: positions
agree with what pulls take, estimates from a constructed history, and where they are shown
(piped text, ``ticket show --json``, ``queue list``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from cxdesk.engine.context import ticket_fields
from cxdesk.engine.piped import PipeContext, render, template_problems
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import PresenceState, Priority, simulated_clock, utcnow
from cxdesk.store.presence import set_presence
from cxdesk.store.pull import pull_next
from cxdesk.store.waiting import (
    UNKNOWN_WORDS,
    Pace,
    min_handled,
    queue_outlooks,
    queue_waiting,
    ticket_wait,
    wait_in_words,
    weighted_handle,
)
from tests.cli_helpers import Cli
from tests.desk import build_small_desk

HANDLED = [10.0, 10.0, 10.0, 10.0, 30.0]
"""Handle times (minutes) of the constructed history, oldest first: the weighted average is
10 until the last, then 0.1 x 30 + 0.9 x 10 = 12."""
EXPECTED_HANDLE = 12.0


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    with simulated_clock(lambda: moment):
        yield


def open_ticket(engine: Engine, title: str, *, priority: str = Priority.medium) -> str:
    with transaction(engine) as s:
        draft = ops.TicketDraft(title=title, team="360", priority=priority)
        key = ops.create_ticket(s, actor=None, draft=draft).key
    assert key is not None
    return key


def pull(engine: Engine, expert: str, queue: str) -> str:
    with read_session(engine) as s:
        actor = directory.get_user(s, expert)
    return pull_next(engine, actor=actor, queue_name=queue).key


def resolve(engine: Engine, key: str) -> None:
    with transaction(engine) as s:
        ticket = ops.get_ticket(s, key)
        ops.change_status(s, None, ticket, directory.get_status(s, "resolved"))


def present(engine: Engine, state: PresenceState, *usernames: str, at: datetime) -> None:
    """Set the experts' presence as ``cxdesk user status`` does (held, no heartbeat)."""
    with transaction(engine) as s:
        for username in usernames:
            user = directory.get_user(s, username)
            set_presence(s, user, state, heartbeat=False, now=at)


def handle_history(engine: Engine, start: datetime, durations: list[float]) -> datetime:
    """Tickets of team 360 pulled by maya and omar (available from ``start``) in turn and
    resolved after ``durations`` minutes, one after the other from ``start``; returns when the
    last was resolved."""
    present(engine, PresenceState.available, "maya", "omar", at=start)
    moment = start
    for index, minutes in enumerate(durations):
        with at(moment):
            key = open_ticket(engine, f"Handled {index}")
            pull(engine, ("maya", "omar")[index % 2], "360")
        moment += timedelta(minutes=minutes)
        with at(moment):
            resolve(engine, key)
        moment += timedelta(minutes=1)
    return moment


@pytest.mark.parametrize("ordering", ["oldest", "priority"])
def test_positions_are_the_order_pulls_take(desk: Engine, ordering: str) -> None:
    with transaction(desk) as s:
        directory.add_queue(s, actor=None, name="360 desk", team="360", ordering=ordering)
    start = utcnow() - timedelta(hours=1)
    priorities = ["low", "critical", "medium", "high", "medium", "critical", "low", "high"]
    for index, priority in enumerate(priorities):
        with at(start + timedelta(minutes=index // 2)):  # pairs share a creation time
            open_ticket(desk, f"Customer {index}", priority=priority)
    with read_session(desk) as s:
        waiting = queue_waiting(s, "360 desk")
    assert [w.position for w in waiting] == list(range(1, len(priorities) + 1))
    pulled = [pull(desk, ("maya", "omar")[i % 2], "360 desk") for i in range(len(priorities))]
    assert [w.key for w in waiting] == pulled
    if ordering == "priority":  # not simply the creation order
        assert pulled != sorted(pulled, key=lambda key: int(key.split("-")[1]))


def test_a_tickets_own_position_counts_in_its_teams_first_queue(desk: Engine) -> None:
    with transaction(desk) as s:
        directory.add_queue(s, actor=None, name="360 urgent", team="360", ordering="priority")
    keys = [open_ticket(desk, "First"), open_ticket(desk, "Second", priority="critical")]
    with read_session(desk) as s:
        first = ticket_wait(s, ops.get_ticket(s, keys[1]))
        urgent = {w.key: w.position for w in queue_waiting(s, "360 urgent")}
    assert first is not None and (first.queue, first.position) == ("360", 2)
    assert urgent[keys[1]] == 1
    pull(desk, "maya", "360")
    with read_session(desk) as s:
        assert ticket_wait(s, ops.get_ticket(s, keys[0])) is None  # owned: not waiting
        second = ticket_wait(s, ops.get_ticket(s, keys[1]))
    assert second is not None and second.position == 1


def test_the_estimate_is_unknown_below_the_history_threshold(desk: Engine) -> None:
    start = utcnow() - timedelta(hours=2)
    end = handle_history(desk, start, HANDLED[:4])
    with at(end):
        open_ticket(desk, "Waiting")
    with read_session(desk) as s:
        waiting = queue_waiting(s, "360", now=end)
        assert [w.wait_minutes for w in waiting] == [None]
        directory.set_setting(s, "estimate_min_handled", "4")
        assert queue_waiting(s, "360", now=end)[0].wait_minutes is not None


def test_the_estimate_follows_the_weighted_handle_time(desk: Engine) -> None:
    assert weighted_handle(HANDLED) == pytest.approx(EXPECTED_HANDLE)
    start = utcnow() - timedelta(hours=3)
    end = handle_history(desk, start, HANDLED)
    with at(end):
        for index in range(4):
            open_ticket(desk, f"Waiting {index}")
    with read_session(desk) as s:
        waits = [w.wait_minutes for w in queue_waiting(s, "360", now=end)]
    # maya and omar are both free: the first two at once, the next two after one handle time.
    assert waits == pytest.approx([0, 0, EXPECTED_HANDLE, EXPECTED_HANDLE])
    # omar pulls the first one; 5 minutes into it, he is expected free in 7 minutes.
    with at(end):
        pull(desk, "omar", "360")
    with read_session(desk) as s:
        later = [w.wait_minutes for w in queue_waiting(s, "360", now=end + timedelta(minutes=5))]
    assert later == pytest.approx([0, EXPECTED_HANDLE - 5, EXPECTED_HANDLE])
    # maya goes on a break: omar alone takes the next ones.
    present(desk, PresenceState.break_, "maya", at=end)
    with read_session(desk) as s:
        alone = [w.wait_minutes for w in queue_waiting(s, "360", now=end + timedelta(minutes=5))]
    assert alone == pytest.approx(
        [EXPECTED_HANDLE - 5, 2 * EXPECTED_HANDLE - 5, 3 * EXPECTED_HANDLE - 5]
    )
    # omar goes away too: nobody is available, unknown.
    present(desk, PresenceState.away, "omar", at=end)
    with read_session(desk) as s:
        idle = queue_waiting(s, "360", now=end + timedelta(minutes=5))
    assert [w.wait_minutes for w in idle] == [None, None, None]


def test_queue_outlooks_give_the_next_customer(desk: Engine) -> None:
    end = handle_history(desk, utcnow() - timedelta(hours=3), HANDLED)
    with at(end):
        for index in range(3):
            open_ticket(desk, f"Waiting {index}")
    with read_session(desk) as s:
        outlooks = {o.stats.name: o for o in queue_outlooks(s, now=end)}
    assert (outlooks["360"].stats.waiting, outlooks["360"].next_position) == (3, 4)
    assert outlooks["360"].next_wait == pytest.approx(EXPECTED_HANDLE)
    assert outlooks["Solo"].next_wait is None


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (None, UNKNOWN_WORDS),
        (0, "less than a minute"),
        (1.2, "about a minute"),
        (7.4, "about 7 minutes"),
        (13, "about 15 minutes"),
        (57, "about 55 minutes"),
        (59, "about 1 hour"),
        (80, "about 1 hour 15 minutes"),
        (150, "about 2 hours 30 minutes"),
        (240, "about 4 hours"),
        (241, "more than 4 hours"),
    ],
)
def test_waits_in_words(minutes: float | None, words: str) -> None:
    assert wait_in_words(minutes) == words


@pytest.mark.parametrize("free_in", [(3.7,), (0.0, 1.5), (2.2, 0.0, 7.1)])
def test_waits_are_the_next_free_expert_each_time(free_in: tuple[float, ...]) -> None:
    # The reference: each customer in turn goes to the expert free first, who is then busy one
    # handle time longer (the one-expert shortcut must give the very same floats).
    free, expected = list(free_in), []
    for _customer in range(500):
        start = min(free)
        expected.append(start)
        free[free.index(start)] = start + 9.3
    pace = Pace(handled=5, handle_minutes=9.3, free_in=free_in)
    assert pace.waits(500) == expected
    assert pace.wait(500) == expected[-1] and pace.wait(1) == expected[0]
    assert pace.waits(0) == [] and Pace(5, None, free_in).waits(2) == [None, None]


def test_piped_text_gives_the_position_and_the_estimate(desk: Engine) -> None:
    template = "You are number ${tck://Field/QueuePosition}: ${tck://Field/EstimatedWait}."
    assert template_problems(template) == []
    end = handle_history(desk, utcnow() - timedelta(hours=3), HANDLED)
    with at(end):
        keys = [open_ticket(desk, f"Waiting {index}") for index in range(3)]
        with read_session(desk) as s:  # the fields are read when the template names them
            third = render(
                template, PipeContext(ticket=ticket_fields(s, ops.get_ticket(s, keys[2])))
            )
            first = render(
                template, PipeContext(ticket=ticket_fields(s, ops.get_ticket(s, keys[0])))
            )
    assert third == "You are number 3: about 10 minutes."
    assert first == "You are number 1: less than a minute."
    present(desk, PresenceState.away, "maya", "omar", at=end)
    with read_session(desk) as s:  # nobody available: unknown
        assert ticket_fields(s, ops.get_ticket(s, keys[0]))["EstimatedWait"] == UNKNOWN_WORDS
    pull(desk, "maya", "360")
    with read_session(desk) as s:
        owned = ticket_fields(s, ops.get_ticket(s, keys[0]))
        assert (owned["QueuePosition"], owned["EstimatedWait"]) == ("", "")


def test_ticket_show_json_has_the_position_and_the_estimate(desk: Engine, cli: Cli) -> None:
    handle_history(desk, utcnow() - timedelta(minutes=80), HANDLED)
    keys = [open_ticket(desk, f"Waiting {index}") for index in range(3)]
    shown = json.loads(cli("ticket", "show", keys[2], "--json", "--as", "maya").stdout)
    assert (shown["queue_position"], shown["estimated_wait_minutes"]) == (3, 12)
    pull(desk, "maya", "360")
    shown = json.loads(cli("ticket", "show", keys[0], "--json", "--as", "maya").stdout)
    assert (shown["queue_position"], shown["estimated_wait_minutes"]) == (None, None)
    with transaction(desk) as s:
        directory.set_setting(s, "estimate_min_handled", "50")
    shown = json.loads(cli("ticket", "show", keys[1], "--json", "--as", "maya").stdout)
    assert (shown["queue_position"], shown["estimated_wait_minutes"]) == (1, None)


def test_queue_list_shows_waiting_next_position_and_estimate(desk: Engine, cli: Cli) -> None:
    handle_history(desk, utcnow() - timedelta(minutes=80), HANDLED)
    for index in range(3):
        open_ticket(desk, f"Waiting {index}")
    result = cli("queue", "list", "--as", "maya")
    assert result.exit_code == 0, str(result)
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "next position" in result.stdout and "estimate" in result.stdout
    cells = [cell.strip() for cell in lines["360"].split("│")]
    assert cells[4:6] == ["3", "4"] and cells[7] == "about 10 minutes"
    solo = [cell.strip() for cell in lines["Solo"].split("│")]
    assert solo[4:6] == ["0", "1"] and solo[7] == UNKNOWN_WORDS


@pytest.mark.slow
def test_the_queues_screen_shows_the_next_customers_estimate(desk: Engine) -> None:
    from textual.widgets import DataTable

    from cxdesk.app import create_app
    from cxdesk.screens.queues import QueuesScreen
    from tests.tui_helpers import log_in, run_app, wait_until

    handle_history(desk, utcnow() - timedelta(minutes=80), HANDLED)
    for index in range(3):
        open_ticket(desk, f"Waiting {index}")

    async def script(app: Any, pilot: Any) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: table.row_count == 4, "4 rows")
        waiting, estimate = 2, 3  # columns: mark, queue, waiting, estimate, available...
        assert [str(table.get_row("360")[i]) for i in (waiting, estimate)] == ["3", "~12m"]
        assert str(table.get_row("Solo")[estimate]) == "unknown"
        open_ticket(desk, "One more")  # a fourth customer: the next one is fifth
        await wait_until(
            pilot, lambda: str(table.get_row("360")[estimate]) == "~24m", "the new estimate"
        )

    run_app(desk, lambda app_engine: create_app(app_engine, user="omar", poll_seconds=0.2,
                                                deliver=False), script, size=(120, 40))  # fmt: skip


def test_a_seed_sets_the_history_threshold(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    seed = tmp_path / "desk.toml"
    seed.write_text("[desk]\nestimate_min_handled = 0\n")
    refused = cli("seed", str(seed))
    assert (
        refused.exit_code == 1
        and "estimate_min_handled must be a whole number of handled tickets from 1 to 1000"
        in str(refused)
    )
    seed.write_text("[desk]\nestimate_min_handled = 12\n")
    assert cli("seed", str(seed)).exit_code == 0
    with read_session(engine) as s:
        assert min_handled(s) == 12


def test_a_workflow_message_gives_the_position_at_creation(desk: Engine) -> None:
    from sqlmodel import col, select

    from cxdesk.engine.dispatch import unit_of_work
    from cxdesk.engine.workflows import save_workflow
    from cxdesk.store.models import OutboxMessage

    with transaction(desk) as s:
        save_workflow(
            s, actor=None, name="Where you stand", event="ticket.created",
            tasks=[{"type": "send_email", "to": "ada@example.com", "subject": "Checked in",
                    "body": "#${tck://Field/QueuePosition}, ${tck://Field/EstimatedWait}"}],
        )  # fmt: skip
    for index in range(2):
        with unit_of_work(desk) as s:
            ops.create_ticket(s, actor=None, draft=ops.TicketDraft(title=f"T{index}", team="360"))
    with read_session(desk) as s:
        bodies = s.exec(select(OutboxMessage.body).order_by(col(OutboxMessage.id))).all()
    assert bodies == [f"#1, {UNKNOWN_WORDS}", f"#2, {UNKNOWN_WORDS}"]
