"""The ticket screens speak the catalog's language (issue 17, items 1 and 5), driven by keys on
SQLite and PostgreSQL: run in the pseudo-language (``tests.pseudo``), the ticket screen with
its tabs, the ticket list, History, the Stream, Insights and the macro picker draw no English
word outside the catalog but the desk's own data; a French expert opens a ticket and resolves
it with French labels on screen; the SLA's words are in the reader's language while an export
made in French still writes the English state.

One desk serves every test (``i18n_desk``): the insights desk (worked tickets with survey
answers), a ticket with a conversation and a breached SLA, and a shared macro. The app's clock
is held at the SLA cases' ``T0``, so the SLA words do not move under the test.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Static, TabbedContent
from textual.widgets._footer import FooterKey

from cxdesk.app import CxDeskApp, create_app
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.macros import save_macro
from cxdesk.i18n import in_language, use_language
from cxdesk.screens.history import HistoryScreen
from cxdesk.screens.insights import InsightsScreen
from cxdesk.screens.macro_picker import MacroPicker
from cxdesk.screens.stream import StreamScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.tickets import TicketsScreen
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.export import export_tickets
from cxdesk.store.replies import reply_to_customer
from cxdesk.store.sla_display import SlaTimes, sla_words
from cxdesk.store.tickets import (
    TicketDraft,
    add_comment,
    create_ticket,
    get_ticket,
    update_ticket,
)
from cxdesk.store.views import Sort, TicketFilter
from cxdesk.widgets.change_dialog import ChangeDialog
from tests import tui_helpers
from tests.pseudo import untranslated
from tests.test_insights import build_insights_desk
from tests.test_macros import REPLY as REPLY_OF_WAITING
from tests.test_macros import WAITING
from tests.test_sla_display import SLA_CASES, T0, build_sla_desk
from tests.tui_helpers import drawn_text, log_in, wait_until

SIZE = (160, 48)
NOTE = "Zoë sent a screenshot"
REPLY = "Thanks Zoë, we are on it"

DESK_DATA = [
    # people, teams, customers, titles, the macro, what was written
    *("Maya", "Omar", "Kenji", "Vera", "Admin", "maya", "omar", "kenji", "admin"),
    *("Stats iQ", "360", "Solo", "Ada", "Zoë O'Neil", "zoe@example.com"),
    *("Help with Stats iQ", "Help with 360", "Filters reset", "Done", "Waiting"),
    *("Follow up later", NOTE, REPLY, "Asked ${tck://Field/customerName} for a screenshot"),
    *("cxdesk", "EXP", REPLY_OF_WAITING),
]
CODES = ["outbox"]
"""The one code still drawn: a message event's detail ("outbox #1", "outbox #1 due now"), text
the desk stores in English with the event, as it does its log lines. Statuses, priorities,
channels, sources, event kinds and field names are drawn by their labels (``cxdesk.labels``)."""
NOT_MINE = [
    # Widgets' own words (cxdesk/widgets/*.py: another part of issue 17 translates them).
    *("Service level", "due", "INTERNAL", "OUTGOING", "INCOMING"),
    "SLA per team: attained = met / (met + breached); time to target",  # widgets/sla_panel.py
    *("Team", "Target", "Attained", "Met", "Breached", "Done", "Median"),
    "esc",  # a key's name in the Footer
]
"""Words of shared widgets drawn on these screens, translated by the widgets' own part."""


@dataclass(frozen=True)
class Desk:
    engine: Engine
    ticket: str
    """Zoë's ticket on 360: a note and an email reply, its first response breached at T0."""


@pytest.fixture
def i18n_desk(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # replies stay queued
    build_insights_desk(engine)
    with unit_of_work(engine) as session:
        maya = get_user(session, "maya")
        draft = TicketDraft(title="Filters reset", team="360", customer_name="Zoë O'Neil",
                            customer_email="zoe@example.com")  # fmt: skip
        ticket = create_ticket(session, actor=get_user(session, "admin"), draft=draft)
        ticket.sla_policy_id = 1
        for column, value in SLA_CASES["late"].items():
            setattr(ticket, column, value)
        session.add(ticket)
        session.flush()
        key = str(ticket.key)
        add_comment(session, actor=maya, key=key, body=NOTE)
        reply_to_customer(session, actor=maya, key=key, body=REPLY, channel="email")
        save_macro(session, actor=None, name="Waiting", actions=WAITING)
    yield Desk(engine, key)


def run_as(desk: Desk, user: str, script: Any) -> None:
    def build(engine: Engine) -> CxDeskApp:
        return create_app(engine, user=user, poll_seconds=600, clock=lambda: T0)

    tui_helpers.run_app(desk.engine, build, script, size=SIZE)


def assert_only_catalog_text(app: CxDeskApp, *more: str, within: Widget | None = None) -> str:
    """No word is drawn outside the catalog but the desk's data (and ``more``); ``within``:
    in that widget's region only (a dialog over a screen). Returns the text checked."""
    drawn = drawn_text(app)
    if within is not None:
        x, y, width, height = within.region
        drawn = "\n".join(line[x : x + width] for line in drawn.splitlines()[y : y + height])
    left = untranslated(drawn, data=[*DESK_DATA, *CODES, *NOT_MINE, *more])
    assert left == [], f"{' '.join(left)}\n{drawn}"
    return drawn


def is_active(tabs: TabbedContent, tab: str) -> bool:
    return tabs.active == tab


async def shown(app: CxDeskApp, pilot: Pilot[Any], screen: Any, ready: Any, what: str) -> None:
    await log_in(app, pilot)
    app.push_screen(screen)
    await wait_until(pilot, lambda: app.screen is screen and ready(), what)
    await pilot.pause()


# -- the pseudo-language: nothing English outside the catalog ----------------------------------


def test_the_ticket_screen_and_its_tabs_speak_only_catalog_text(
    i18n_desk: Desk, pseudo_language: None
) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = TicketScreen(i18n_desk.ticket)
        await shown(app, pilot, screen, lambda: screen.view is not None, "the ticket")
        await wait_until(pilot, lambda: "⟦Service level⟧" in drawn_text(app) or
                         "Service level" in drawn_text(app), "the SLA lines")  # fmt: skip
        await wait_until(pilot, lambda: NOTE in drawn_text(app), "the conversation")
        drawn = drawn_text(app)
        assert "⟦Conversation⟧" in drawn and "⟦breached⟧" in drawn
        assert_only_catalog_text(app, i18n_desk.ticket)
        tabs = screen.query_one("#tabs", TabbedContent)
        for tab in ("tab-history", "tab-log"):
            await pilot.press("l")
            await wait_until(pilot, partial(is_active, tabs, tab), tab)
            await pilot.pause()
            assert_only_catalog_text(app, i18n_desk.ticket)

    run_as(i18n_desk, "maya", script)


def test_the_ticket_list_speaks_only_catalog_text(i18n_desk: Desk, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = TicketsScreen()
        await shown(app, pilot, screen, lambda: screen.page is not None, "the first page")
        drawn = drawn_text(app)
        assert "⟦Reported on⟧" in drawn and "⟦breached⟧" in drawn
        assert_only_catalog_text(app)

    run_as(i18n_desk, "maya", script)


def test_history_speaks_only_catalog_text(i18n_desk: Desk, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = HistoryScreen()
        await shown(app, pilot, screen, lambda: screen.read is not None, "the first page")
        await pilot.press("o")  # the organisation's tickets, with the user column
        await wait_until(pilot, lambda: screen.read is not None and screen.read.organisation,
                         "the organisation's tickets")  # fmt: skip
        await pilot.pause()
        assert "⟦Last activity⟧" in drawn_text(app)
        assert_only_catalog_text(app)

    run_as(i18n_desk, "admin", script)


def test_the_stream_speaks_only_catalog_text(i18n_desk: Desk, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = StreamScreen()
        await shown(app, pilot, screen, lambda: screen.read is not None, "the live page")
        assert "⟦When⟧" in drawn_text(app)
        assert_only_catalog_text(app, "ticket.status_changed")

    run_as(i18n_desk, "maya", script)


def test_insights_speak_only_catalog_text(i18n_desk: Desk, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = InsightsScreen()
        await shown(app, pilot, screen, lambda: screen.read is not None, "the figures")
        assert "⟦All⟧" in drawn_text(app)
        assert_only_catalog_text(app, "CSAT", "NPS")
        await pilot.press("b", "p")  # by expert, the last 30 days
        await wait_until(pilot, lambda: screen.read is not None and screen.read.by == "expert"
                         and screen.read.period == 1, "by expert")  # fmt: skip
        await pilot.pause()
        assert_only_catalog_text(app, "CSAT", "NPS")

    run_as(i18n_desk, "admin", script)


def test_the_macro_picker_speaks_only_catalog_text(i18n_desk: Desk, pseudo_language: None) -> None:
    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = TicketScreen(i18n_desk.ticket)
        await shown(app, pilot, screen, lambda: screen.view is not None, "the ticket")
        await wait_until(pilot, lambda: "macro" in {k.action for k in app.screen.query(FooterKey)},
                         "the M key")  # fmt: skip
        await pilot.press("M")
        await wait_until(pilot, lambda: isinstance(app.screen, MacroPicker), "the picker")
        await pilot.pause()
        assert "⟦shared⟧" in drawn_text(app)
        picker = assert_only_catalog_text(app, within=app.screen.query_one("#macro-picker"))
        assert "⟦Enter applies" in picker and "Waiting" in picker

    run_as(i18n_desk, "maya", script)


# -- a real language: the flow works translated ------------------------------------------------


FRENCH_ON_SCREEN = (
    *("Client (lecture seule)", "Données du ticket", "Historique du client", "Journal"),
    *("Responsable", "dépassé", "note interne · maya", "Première réponse"),
)
"""Section titles, a field, the SLA state and target, a conversation header, in French."""


@pytest.fixture
def french() -> Iterator[None]:
    use_language("fr")
    try:
        yield
    finally:
        use_language(None)


def test_a_french_expert_opens_a_ticket_and_resolves_it(i18n_desk: Desk, french: None) -> None:
    with unit_of_work(i18n_desk.engine) as session:
        update_ticket(session, actor=get_user(session, "admin"), key=i18n_desk.ticket,
                      comment="Omar", changes={"owner": "omar"})  # fmt: skip

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        app.open_ticket(i18n_desk.ticket)
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        screen = app.screen
        assert isinstance(screen, TicketScreen)
        await wait_until(pilot, lambda: screen.view is not None, "the ticket read")
        await pilot.pause()
        drawn = drawn_text(app)
        for french_text in FRENCH_ON_SCREEN:
            assert french_text in drawn, french_text
        fields = str(screen.query_one("#fields", Static).render())
        assert "Omar" in fields and "omar" not in fields, fields  # the owner by name
        keys = {key.key: key.description for key in screen.query(FooterKey)}
        assert keys["r"] == "Résoudre" and keys["m"] == "Écrire au client"

        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the comment's focus")
        assert f"Résoudre {i18n_desk.ticket}" in drawn_text(app)
        await pilot.press(*"Rappel fait, tout marche", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog closed")
        await wait_until(pilot, lambda: screen.view is not None
                         and screen.view.record["status"] == "resolved", "resolved")  # fmt: skip
        assert tui_helpers.notified(app, f"{i18n_desk.ticket} enregistré")

    run_as(i18n_desk, "maya", script)
    with unit_of_work(i18n_desk.engine) as session:
        assert get_ticket(session, i18n_desk.ticket).status == "resolved"


# -- the SLA's words: translated on screen, English in exports ---------------------------------


def test_sla_words_are_translated_and_exports_keep_english(engine: Engine, tmp_path: Path) -> None:
    keys = build_sla_desk(engine)
    with read_session(engine) as session:
        late = SlaTimes.of(get_ticket(session, keys["late"]))
        paused = SlaTimes.of(get_ticket(session, keys["paused"]))
    assert late is not None and paused is not None
    with in_language("ja"):
        assert sla_words(late.view(T0), T0) == "違反 · 5分 超過"
        assert sla_words(late.view(T0), T0, compact=True) == "違反 5分"
        assert sla_words(paused.view(T0), T0) == "一時停止 · 残り 11分"
    with in_language("fr"):
        assert sla_words(late.view(T0), T0) == "dépassé · 5 min de retard"
        export_tickets(engine, TicketFilter(), tmp_path / "t.csv", sort=Sort("sla"))
    with (tmp_path / "t.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-2:] == ["SLA state", "SLA due"] and rows[0][0] == "Key"
    assert {row[0]: row[-2] for row in rows[1:]}[keys["late"]] == "breached"
