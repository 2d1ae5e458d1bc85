"""The ticket screen's macro key (``M``) driven by keys, on SQLite and PostgreSQL: the picker
lists the team's and the shared macros with what they do, typing filters it, Enter applies the
highlighted one in a worker (the ticket changes, its log names the macro), Escape cancels, and a
refusal is one notification that changes nothing: also a macro over a change someone saved since
the screen read the ticket, after which the screen reloads and the key applies it. No statement
runs on the event loop.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList
from textual.widgets._footer import FooterKey

from cxdesk.app import CxDeskApp
from cxdesk.screens.macro_picker import MacroPicker
from cxdesk.screens.ticket import TicketScreen
from tests.cli_helpers import dump_tables, table_counts
from tests.test_macros import (  # noqa: F401 (desk: a fixture)
    EMAIL_KEY,
    PHONE_KEY,
    STALE,
    WAITING,
    WRITTEN,
    desk,
    omar_resolves,
)
from tests.test_tui_ticket_detail import open_ticket, run_as, stored
from tests.tui_helpers import notices, notified, wait_until, with_login

pytestmark = pytest.mark.usefixtures("_no_delivery")


@pytest.fixture
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # replies stay queued in the outbox


def listed(app: CxDeskApp) -> list[str]:
    options = app.screen.query_one("#macro-options", OptionList)
    return [str(options.get_option_at_index(i).id) for i in range(options.option_count)]


async def open_picker(app: CxDeskApp, pilot: Pilot[Any], key: str) -> TicketScreen:
    screen = await open_ticket(app, pilot, key)
    await wait_until(
        pilot, lambda: "macro" in {k.action for k in app.screen.query(FooterKey)}, "the M key"
    )
    await pilot.press("M")
    await wait_until(pilot, lambda: isinstance(app.screen, MacroPicker), "the macro picker")
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "the filter's focus")
    return screen


def test_m_picks_a_macro_by_typing_and_enter_applies_it(desk: Engine) -> None:  # noqa: F811
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_picker(app, pilot, EMAIL_KEY)
        assert listed(app) == ["Waiting"]  # "Stats: resolve" is Stats iQ's
        picker_text = str(app.screen.query_one(OptionList).get_option_at_index(0).prompt)
        assert "Status -> Follow up later, Priority -> High" in picker_text
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the picker closed")
        assert stored(desk, EMAIL_KEY).status == "new"  # Escape applied nothing

        await pilot.press("M")
        await wait_until(pilot, lambda: isinstance(app.screen, MacroPicker), "the picker again")
        await pilot.press(*"zzz")
        await wait_until(pilot, lambda: listed(app) == [], "nothing matches zzz")
        await pilot.press("backspace", "backspace", "backspace", *"wait")
        await wait_until(pilot, lambda: listed(app) == ["Waiting"], "Waiting matches")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the picker closed")
        await wait_until(pilot, lambda: notified(app, "EXP-1: macro Waiting applied"), "the notice")
        log: DataTable[str] = screen.query_one("#log", DataTable)
        await wait_until(
            pilot,
            lambda: any(
                "macro Waiting" in str(log.get_row_at(i)[-1]) for i in range(log.row_count)
            ),
            "the log naming the macro",
        )

    run_as(desk, "maya", script)
    ticket = stored(desk, EMAIL_KEY)
    assert (ticket.status, ticket.priority) == ("Follow up later", "high")


def test_a_refused_macro_is_one_notice_and_changes_nothing(desk: Engine) -> None:  # noqa: F811
    """EXP-2 has no customer email; "Waiting" replies by email when there is one, else by SMS,
    so here a macro that insists on email is refused whole."""
    from cxdesk.engine.macros import save_macro
    from cxdesk.store.db import transaction

    with transaction(desk) as session:
        actions = [*WAITING[:2], {"type": "reply", "body": "Hi", "channel": "email"}]
        save_macro(session, actor=None, name="Ask by email", actions=actions)
    before = table_counts(desk)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_picker(app, pilot, PHONE_KEY)
        options = app.screen.query_one(OptionList)
        assert listed(app) == ["Ask by email", "Waiting"] and options.highlighted == 0
        await pilot.press("down")
        await wait_until(pilot, lambda: options.highlighted == 1, "Down moved")
        await pilot.press("up")
        await wait_until(pilot, lambda: options.highlighted == 0, "Up moved back")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the picker closed")
        await wait_until(pilot, lambda: notified(app, "EXP-2 has no customer email"), "the refusal")

    run_as(desk, "maya", script)
    assert table_counts(desk) == with_login(before)  # the login's writes, not the macro's
    assert stored(desk, PHONE_KEY).status == "new"


def test_a_macro_over_a_change_saved_since_the_screen_read_is_refused(desk: Engine) -> None:  # noqa: F811
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_picker(app, pilot, EMAIL_KEY)
        shown = screen.shown_version()
        assert shown is not None
        omar_resolves(desk, EMAIL_KEY)  # another terminal saves between the read and the Enter
        before = dump_tables(desk, WRITTEN)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the picker closed")
        await wait_until(pilot, lambda: notified(app, STALE[0]), "the refusal")
        [refusal] = [notice for notice in notices(app) if STALE[0] in notice]
        assert refusal.endswith(STALE[1])
        assert dump_tables(desk, WRITTEN) == before  # nothing of the macro
        await wait_until(pilot, lambda: screen.shown_version() == shown + 1, "the reload")

        await pilot.press("M")  # a second try, over the version now shown
        await wait_until(pilot, lambda: isinstance(app.screen, MacroPicker), "the picker again")
        await pilot.press("enter")
        await wait_until(pilot, lambda: notified(app, "EXP-1: macro Waiting applied"), "the notice")

    run_as(desk, "maya", script)
    ticket = stored(desk, EMAIL_KEY)
    assert (ticket.status, ticket.priority) == ("Follow up later", "high")
