"""A language per user (issue 17 item 2): set and listed by the CLI, spoken by the CLI for its
acting user (else the desk's, else the environment's), spoken by the TUI from login on and
switched live from its palette; the theme and language chosen in the TUI kept in config.toml
for the next start."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import DataTable

from cxdesk.app import CxDeskApp, create_app
from cxdesk.i18n import DESK_LANGUAGE_SETTING, current_language
from cxdesk.locations import config_file
from cxdesk.screens.login import LoginScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user, set_setting
from cxdesk.store.models import User
from cxdesk.store.views import LIST_COLUMNS
from tests.cli_helpers import assert_one_error_line
from tests.desk import build_small_desk
from tests.test_hall_board import walk_in
from tests.tui_helpers import drawn_text, log_in, palette, run_app, wait_until

Cli = Any


def language_of(engine: Engine, username: str) -> str | None:
    with read_session(engine) as s:
        return get_user(s, username).language


def user_row(listing: str, username: str) -> str:
    return next(line for line in listing.splitlines() if f" {username} " in line)


def test_a_users_language_is_set_listed_and_an_unknown_one_refused(
    engine: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    assert cli("user", "set", "maya", "--lang", "ja").exit_code == 0
    assert "日本語" in user_row(cli("user", "list").stdout, "maya")
    assert language_of(engine, "maya") == "ja"

    assert_one_error_line(cli("user", "set", "maya", "--lang", "klingon"), "not a language")
    refused = cli("user", "set", "omar", "--lang", "fr", "--as", "maya")  # her own only
    assert refused.exit_code == 1 and refused.stdout == "", str(refused)
    assert refused.error_lines == [  # said in maya's language
        "エラー：他のユーザーの言語を変更できるのは管理者だけです（maya は expert）"
    ], str(refused)
    assert language_of(engine, "maya") == "ja" and language_of(engine, "omar") is None

    monkeypatch.setenv("CXDESK_PASSWORD", "a new password")
    added = cli("user", "add", "lucie", "--name", "Lucie Petit", "--email", "l@example.com",
                "--role", "expert", "--lang", "fr_FR.UTF-8")  # fmt: skip
    assert added.exit_code == 0, str(added)
    assert "Français" in user_row(cli("user", "list").stdout, "lucie")
    refused = cli("user", "add", "zed", "--name", "Zed", "--email", "z@example.com",
                  "--role", "expert", "--lang", "xx")  # fmt: skip
    assert_one_error_line(refused, "'xx' is not a language")
    with read_session(engine) as s:
        assert s.exec(select(User).where(User.username == "zed")).first() is None


def test_the_cli_speaks_the_acting_users_language_else_the_desks_else_the_environments(
    engine: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    walk_in(engine, "Ada", "Lovelace")
    said = cli("user", "set", "maya", "--lang", "fr", "--as", "maya")
    assert said.stdout.strip() == "maya parle désormais Français."
    assert "│ Nouveau " in cli("tickets", "list", "--as", "maya").stdout  # the status "new"
    assert "│ New " in cli("tickets", "list", "--as", "omar").stdout

    with transaction(engine) as s:
        set_setting(s, DESK_LANGUAGE_SETTING, "ja")
    assert "│ 新規 " in cli("tickets", "list", "--as", "omar").stdout  # no LANG of ours: the desk's
    monkeypatch.setenv("LANG", "it_IT.UTF-8")  # omar has no language: his terminal's first
    assert "│ Nuovo " in cli("tickets", "list", "--as", "omar").stdout
    assert "│ Nouveau " in cli("tickets", "list", "--as", "maya").stdout  # hers first


def tickets_status(app: CxDeskApp) -> str:
    """The status shown in the first row of the tickets list ("" while it loads)."""
    if not isinstance(app.screen, TicketsScreen):
        return ""
    table = app.screen.query_one("#tickets", DataTable)
    if not table.row_count:
        return ""
    return str(table.get_row_at(0)[list(LIST_COLUMNS).index("status")])


def saved_preferences() -> dict[str, Any]:
    path = config_file()
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@pytest.mark.slow
def test_the_desk_speaks_the_users_language_switches_live_and_remembers_it(
    engine: Engine,
) -> None:
    build_small_desk(engine)
    walk_in(engine, "Ada", "Lovelace")
    with transaction(engine) as s:
        get_user(s, "maya").language = "fr"
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text("# my desk\ndeliver = false  # a worker runs elsewhere\n")
    chosen_theme: list[str] = []

    async def first_run(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        assert current_language() == "fr"
        await palette(pilot, "Tickets")
        await wait_until(pilot, lambda: tickets_status(app) == "Nouveau", "the list in French")
        before = app.screen
        await palette(pilot, "Langue : 日本語")  # the palette speaks French too
        await wait_until(pilot, lambda: tickets_status(app) == "新規", "the list in Japanese")
        assert app.screen is not before  # made again in Japanese, still the tickets list
        # The footer's palette key too (a binding Textual adds itself, not the class's).
        await wait_until(pilot, lambda: "パレット" in drawn_text(app), "the footer in Japanese")
        await wait_until(pilot, lambda: language_of(engine, "maya") == "ja", "maya's language")
        await wait_until(pilot, lambda: saved_preferences().get("language") == "ja", "config")
        chosen_theme.append(app.desk_themes[0])
        await palette(pilot, chosen_theme[0])  # "テーマ：cxdesk-dark" now
        await wait_until(pilot, lambda: saved_preferences().get("theme") == chosen_theme[0],
                         "the theme saved")  # fmt: skip

    run_app(engine, lambda e: create_app(e, user="maya", poll_seconds=0.2), first_run,
            size=(120, 40))  # fmt: skip
    text = config_file().read_text(encoding="utf-8")
    assert "# my desk" in text and "# a worker runs elsewhere" in text  # the rest kept

    async def next_start(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        assert app.theme == chosen_theme[0]
        assert "デスクにログイン" in str(app.screen.query_one("Label").render())

    run_app(engine, lambda e: create_app(e, poll_seconds=0.2), next_start, size=(80, 24))
