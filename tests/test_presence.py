"""Presence on both databases: set, read, heartbeat timeout, counted in the estimates; the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from cxdesk.store import directory
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import PresenceState, simulated_clock
from cxdesk.store.presence import (
    TIMEOUT_SETTING,
    beat,
    presence_of,
    set_presence,
    team_presence,
)
from cxdesk.store.waiting import available_experts
from tests.cli_helpers import TEST_PASSWORD, Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk, pull

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def _set(engine: Engine, username: str, state: PresenceState, *, at: datetime,
         heartbeat: bool = True) -> None:  # fmt: skip
    with transaction(engine) as s:
        set_presence(s, directory.get_user(s, username), state, heartbeat=heartbeat, now=at)


def _state(engine: Engine, username: str, at: datetime) -> PresenceState:
    with read_session(engine) as s:
        return presence_of(s, directory.get_user(s, username), now=at).state


def _available(engine: Engine, team: str, at: datetime) -> list[str]:
    with read_session(engine) as s:
        team_id = directory.get_team(s, team).id
        assert team_id is not None
        found = available_experts(s, team_id, now=at)
        names = {u.id: u.username for u in directory.list_users(s)}
    return [names[e.user_id] for e in found]


def test_nobody_is_available_until_they_say_so(desk: Engine) -> None:
    assert _state(desk, "maya", T0) == PresenceState.away
    assert _available(desk, "360", T0) == []
    _set(desk, "maya", PresenceState.available, at=T0)
    assert _state(desk, "maya", T0) == PresenceState.available
    assert _available(desk, "360", T0) == ["maya"]
    assert _available(desk, "Stats iQ", T0) == ["maya"]
    _set(desk, "maya", PresenceState.break_, at=T0)
    assert _available(desk, "360", T0) == []


def test_a_desk_that_stops_beating_goes_away_after_the_timeout(desk: Engine) -> None:
    _set(desk, "omar", PresenceState.available, at=T0)
    limit = timedelta(seconds=120)
    assert _state(desk, "omar", T0 + limit) == PresenceState.available
    later = T0 + limit + timedelta(seconds=1)
    assert _state(desk, "omar", later) == PresenceState.away
    assert _available(desk, "360", later) == []
    with transaction(desk) as s:  # the desk beats again: available again
        assert beat(s, directory.get_user(s, "omar"), now=later)
    assert _state(desk, "omar", later) == PresenceState.available
    with read_session(desk) as s:
        view = presence_of(s, directory.get_user(s, "omar"), now=later + limit * 2)
    assert view.timed_out and "no heartbeat from the desk since" in view.line()


def test_the_timeout_is_a_desk_setting(desk: Engine) -> None:
    with transaction(desk) as s:
        directory.set_setting(s, TIMEOUT_SETTING, "600")
    _set(desk, "omar", PresenceState.available, at=T0)
    assert _state(desk, "omar", T0 + timedelta(seconds=599)) == PresenceState.available
    assert _state(desk, "omar", T0 + timedelta(seconds=601)) == PresenceState.away


def test_a_state_set_without_a_desk_holds_and_is_not_beaten(desk: Engine) -> None:
    _set(desk, "omar", PresenceState.available, at=T0, heartbeat=False)
    assert _state(desk, "omar", T0 + timedelta(days=1)) == PresenceState.available
    with transaction(desk) as s:
        assert not beat(s, directory.get_user(s, "omar"), now=T0)


def test_available_experts_are_busy_until_their_open_ticket_should_end(desk: Engine) -> None:
    from cxdesk.engine.dispatch import unit_of_work
    from cxdesk.store.tickets import TicketDraft, create_ticket

    with simulated_clock(lambda: T0):
        with unit_of_work(desk) as s:
            create_ticket(s, actor=None, draft=TicketDraft(title="Walk-in", team="360"))
        pull(desk, "omar", "360")
    _set(desk, "omar", PresenceState.available, at=T0)
    _set(desk, "maya", PresenceState.available, at=T0)
    with read_session(desk) as s:
        team_id = directory.get_team(s, "360").id
        assert team_id is not None
        experts = available_experts(s, team_id, now=T0 + timedelta(minutes=1))
        omar = directory.get_user(s, "omar").id
    busy = {e.user_id: e.busy_since for e in experts}
    assert busy[omar] == T0 and sorted(v is None for v in busy.values()) == [False, True]


def test_team_presence_counts_available_of_active_members(desk: Engine) -> None:
    _set(desk, "maya", PresenceState.available, at=T0)
    _set(desk, "omar", PresenceState.away, at=T0)
    with read_session(desk) as s:
        counts = team_presence(s, now=T0)
    assert {name: c.short() for name, c in counts.items()} == {
        "360": "1 / 2",
        "Stats iQ": "1 / 2",
        "Solo": "0 / 1",
    }


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_desk(engine: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    build_small_desk(engine)
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    return cli


def test_user_status_sets_and_shows(cli_desk: Cli, engine: Engine) -> None:
    result = cli_desk("user", "status", "--as", "maya")
    assert result.exit_code == 0, str(result)
    assert result.stdout.strip() == "maya: away (never set)"
    result = cli_desk("user", "status", "break", "--as", "maya")
    assert result.exit_code == 0, str(result)
    assert result.stdout.strip() == "maya is on a break."
    result = cli_desk("user", "status", "--as", "maya")
    assert result.stdout.startswith("maya: break (since ")
    assert _state(engine, "maya", datetime.now(UTC) + timedelta(days=1)) == PresenceState.break_


def test_user_status_refuses_a_state_it_does_not_know(cli_desk: Cli, engine: Engine) -> None:
    before = table_counts(engine)
    result = cli_desk("user", "status", "busy", "--as", "maya")
    assert_one_error_line(result, "status: must be one of available, away, break")
    assert table_counts(engine) == before


# -- the desk (TUI) ----------------------------------------------------------------------------


def _saved(engine: Engine, username: str) -> tuple[str, bool] | None:
    """The stored state and whether it has a heartbeat (None: no row)."""
    from cxdesk.store.models import Presence

    with read_session(engine) as s:
        row = s.get(Presence, directory.get_user(s, username).id)
        return None if row is None else (row.state, row.heartbeat_at is not None)


@pytest.mark.slow
def test_the_desk_makes_an_expert_available_and_p_cycles_it(desk: Engine) -> None:
    from textual.widgets import DataTable

    from cxdesk.app import create_app
    from cxdesk.screens.queues import QueuesScreen
    from tests.tui_helpers import log_in, notified, palette, run_app, wait_until

    def saves_done(app: Any) -> bool:
        return not any(w.group == "presence-save" and not w.is_finished for w in app.workers)

    async def script(app: Any, pilot: Any) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        screen = app.screen
        assert screen.sub_title == "Omar (Expert) · Available"
        table = screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: table.row_count == 4, "Any of my teams and the queues")
        # written before the screen first read the desk: omar is one of 360's two
        assert str(table.get_row("360")[4]) == "1 / 2"
        await pilot.press("p")
        assert screen.sub_title == "Omar (Expert) · On a break"
        await wait_until(pilot, lambda: notified(app, "You are now: On a break"), "the notice")
        await wait_until(pilot, lambda: str(table.get_row("360")[4]) == "0 / 2", "0 of 2")
        await palette(pilot, "Presence: Available")
        await wait_until(pilot, lambda: screen.sub_title.endswith("· Available"), "available")
        await wait_until(pilot, lambda: str(table.get_row("360")[4]) == "1 / 2", "1 of 2")
        app.navigate("Log out")
        await wait_until(pilot, lambda: app.user is None and saves_done(app), "logged out")

    run_app(desk, lambda app_engine: create_app(app_engine, user="omar", poll_seconds=0.2,
                                                deliver=False), script, size=(120, 40))  # fmt: skip
    assert _saved(desk, "omar") == ("away", True)
