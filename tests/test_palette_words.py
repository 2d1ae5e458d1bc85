"""The command palette in the user's language: a command found by its translated name or by its
English one (in Japanese "kanban" finds カンバン, "language" 言語), and "No matches found" said in
that language (``cxdesk.widgets.desk_palette``, on Textual's private palette parts: these tests
fail if a new Textual changes them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update
from textual.command import CommandInput, CommandList
from textual.pilot import Pilot

from cxdesk.app import CxDeskApp
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.store.db import transaction
from cxdesk.store.models import User
from tests.desk import build_small_desk
from tests.test_help_and_escape import SIZE, desk, logged_in, on
from tests.test_palette_roles import open_palette
from tests.tui_helpers import run_app, wait_until


def japanese_maya(engine: Engine) -> None:
    build_small_desk(engine)
    with transaction(engine) as s:
        s.exec(update(User).where(User.username == "maya").values(language="ja"))  # type: ignore[call-overload]


def first_prompt(commands: CommandList) -> str:
    if not commands.option_count:
        return ""
    return str(commands.get_option_at_index(0).prompt).split("\n")[0]


async def search(app: CxDeskApp, pilot: Pilot[Any], query: str) -> CommandList:
    commands = await open_palette(app, pilot)
    await pilot.press(*query)
    await wait_until(pilot, lambda: app.screen.query_one(CommandInput).value == query, query)
    return commands


def test_in_japanese_a_command_is_found_by_its_english_name_too(engine: Engine) -> None:
    japanese_maya(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        commands = await search(app, pilot, "kanban")
        await wait_until(pilot, lambda: first_prompt(commands) == "カンバン (Kanban)", "カンバン")
        await pilot.press("enter")
        await wait_until(pilot, on(app, KanbanScreen), "the kanban")

        await pilot.press("escape")
        await wait_until(pilot, on(app, QueuesScreen), "back on the queues")
        commands = await search(app, pilot, "Language")
        listed = lambda: {  # noqa: E731
            str(commands.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(commands.option_count)
        }
        await wait_until(pilot, lambda: "言語：日本語 (Language: 日本語)" in listed(), "言語")
        await pilot.press("escape")

        commands = await search(app, pilot, "カンバン")  # its own name, as before
        await wait_until(pilot, lambda: first_prompt(commands) == "カンバン", "カンバン alone")

    run_app(engine, desk("maya"), script, size=SIZE)


def test_no_matches_is_said_in_the_users_language(engine: Engine) -> None:
    japanese_maya(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await logged_in(app, pilot, QueuesScreen)
        commands = await search(app, pilot, "qqzzxx")
        await wait_until(pilot, lambda: commands.option_count == 1, "the no-matches line")
        assert "一致するものはありません" in str(commands.get_option_at_index(0).prompt)

    run_app(engine, desk("maya"), script, size=SIZE)
