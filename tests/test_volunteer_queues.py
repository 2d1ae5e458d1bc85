"""Volunteers see the queues, read-only (issue 15 item 8), on SQLite and PostgreSQL: in the
desk (Pilot typing keys as a volunteer: the counts and the next customer's estimate, no pull,
no ticket opened, no "my tickets") and with ``cxdesk queue list``; a pull stays refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable

from cxdesk.app import CxDeskApp, create_app
from cxdesk.screens.board import BoardScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.queues import ANY_ROW, QueuesScreen
from cxdesk.store.db import read_session
from cxdesk.store.tickets import get_ticket
from tests.cli_helpers import Cli, assert_one_error_line
from tests.desk import build_small_desk
from tests.test_hall_board import walk_in
from tests.tui_helpers import log_in, palette, run_app, wait_until


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def owner_of(engine: Engine, key: str) -> int | None:
    with read_session(engine) as session:
        return get_ticket(session, key).owner_id


@pytest.mark.slow
def test_a_volunteer_sees_the_queues_but_cannot_pull_or_open_a_ticket(
    desk: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, grace = walk_in(desk, "Ada", "Lovelace"), walk_in(desk, "Grace", "Hopper")
    pulls: list[str] = []
    opened: list[str] = []
    monkeypatch.setattr(QueuesScreen, "pull", lambda _screen, queue: pulls.append(queue))
    monkeypatch.setattr(CxDeskApp, "open_ticket", lambda _app, key: opened.append(key))

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "the check-in")
        await palette(pilot, "Queues")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        screen = app.screen
        table = screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, "the queues' rows")
        assert ANY_ROW not in table.rows  # no "Any of my teams" to pull from either
        row = [str(cell) for cell in table.get_row("360")]
        assert (row[1], row[2], row[3]) == ("360", "2", "unknown")  # count and estimate
        assert not screen.query_one("#mine").display  # no "my tickets" for a volunteer
        assert "n" not in app.active_bindings  # not offered in the footer either
        table.focus()
        await pilot.press("n", "enter")  # the pull keys, on the 360 row
        await pilot.press("down", "enter")
        assert (pulls, opened) == ([], [])
        assert isinstance(app.screen, QueuesScreen)
        # The board (the positions of the waiting customers) is theirs too.
        await palette(pilot, "Board")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, BoardScreen) and app.screen.board is not None,
            "the board",
        )
        board = app.screen.board
        assert board is not None
        assert [(w.customer, w.position) for w in board.waiting] == [("Ada L.", 1), ("Grace H.", 2)]

    run_app(desk, lambda e: create_app(e, user="vera", poll_seconds=0.2, deliver=False), script,
            size=(120, 40))  # fmt: skip
    assert owner_of(desk, ada) is None and owner_of(desk, grace) is None


def test_an_expert_still_pulls_from_the_queues_screen(desk: Engine) -> None:
    """The gate is the volunteer's only: the same keys pull for an expert."""
    ada = walk_in(desk, "Ada", "Lovelace")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: table.row_count == 4, "Any of my teams and the queues")
        assert app.screen.query_one("#mine").display
        await pilot.press("n")
        await wait_until(pilot, lambda: owner_of(desk, ada) is not None, "the pull")

    run_app(desk, lambda e: create_app(e, user="omar", poll_seconds=0.2, deliver=False), script,
            size=(120, 40))  # fmt: skip


def test_queue_list_answers_a_volunteer_and_a_pull_stays_refused(desk: Engine, cli: Cli) -> None:
    ada = walk_in(desk, "Ada", "Lovelace")
    listed = cli("queue", "list", "--as", "vera")
    assert listed.exit_code == 0, str(listed)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("│ 360 "))
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[4:6] == ["1", "2"]  # one waiting, the next customer is second
    assert "Ada" not in listed.stdout and ada not in listed.stdout  # no ticket details
    assert_one_error_line(cli("ticket", "pull", "360", "--as", "vera"), "not on team 360")
    assert owner_of(desk, ada) is None
