"""Search folds case, accents and width both ways (issue 17 item 4), on SQLite and PostgreSQL:
the folding itself, the ticket list's search (store and TUI), the folded column kept right on
update, and the migration's backfill."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import Input

from cxdesk.app import CxDeskApp
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.search_fold import fold
from cxdesk.store import migrate
from cxdesk.store.directory import get_user
from cxdesk.store.models import Ticket
from cxdesk.store.tickets import update_ticket
from cxdesk.store.views import TicketFilter
from tests.desk import build_small_desk
from tests.test_tui_views import desk, open_list, run_app, table_keys
from tests.test_views import keys_of, make_ticket
from tests.tui_helpers import wait_until


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("zoe", "Zoë"),
        ("muller", "Müller"),
        ("ｅｘａｍｐｌｅ", "example"),
        ("STRASSE", "Straße"),
        ("file", "ﬁle"),
        ("ｶﾞｯｺｳ", "ガッコウ"),  # halfwidth katakana is width, not a different word
    ],
)
def test_fold_makes_both_sides_alike(one: str, other: str) -> None:
    assert fold(one) == fold(other)


def test_fold_keeps_japanese_apart_where_it_differs() -> None:
    assert fold("山田 太郎") == "山田 太郎"
    assert fold("が") != fold("か")  # a voiced sound mark is not an accent
    assert fold("がっこう") != fold("ガッコウ")  # hiragana and katakana need not fold


def build_search_desk(engine: Engine) -> dict[str, str]:
    build_small_desk(engine)
    return {
        "zoë": make_ticket(engine, "Badge missing", "360", customer_name="Zoë Kravitz",
                           customer_email="zk@example.org"),
        "zoe": make_ticket(engine, "Lost bag", "360", customer_name="Zoe Saldana",
                           customer_email="zs@example.org"),
        "müller": make_ticket(engine, "Wi-Fi down", "360", customer_name="Thomas Müller",
                              customer_email="tm@example.org"),
        "wide": make_ticket(engine, "Login fails", "360", customer_name="Kim",
                            customer_email="ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        "plain": make_ticket(engine, "Slides", "360", customer_name="Lee",
                             customer_email="lee@example.com", customer_comment="ａｂｃ ready"),
        "yamada": make_ticket(engine, "受付の質問", "360", customer_name="山田 太郎",
                              customer_email="yamada@example.jp"),
        "percent": make_ticket(engine, "Only 50% printed", "360", customer_name="Pat",
                               customer_email="pat_x@example.net"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zoe", ["zoe", "zoë"]),
        ("zoë", ["zoe", "zoë"]),
        ("ZOË", ["zoe", "zoë"]),
        ("muller", ["müller"]),
        ("MÜLLER", ["müller"]),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", ["plain", "wide"]),  # fullwidth query, plain stored
        ("kim@example.com", ["wide"]),  # plain query, fullwidth stored
        ("abc", ["plain"]),
        ("山田", ["yamada"]),
        ("受付", ["yamada"]),
        ("50%", ["percent"]),  # % and _ are characters, not wildcards
        ("5%p", []),
        ("t_x", ["percent"]),
        ("p_t", []),
        ("a%b", []),
        ("e a", []),  # no match across two fields (title "... bag", name "Zoe ...")
    ],
)
def test_list_search_folds_both_ways(engine: Engine, query: str, expected: list[str]) -> None:
    k = build_search_desk(engine)
    found = keys_of(engine, TicketFilter(text=query))
    assert sorted(found) == sorted(k[name] for name in expected)


def test_search_follows_an_update(engine: Engine) -> None:
    k = build_search_desk(engine)
    assert keys_of(engine, TicketFilter(text="zurich")) == []
    with unit_of_work(engine) as session:
        ticket = session.get_one(Ticket, int(k["plain"].rsplit("-", 1)[1]))
        ticket.title = "Slides for Zürich"
    assert keys_of(engine, TicketFilter(text="zurich")) == [k["plain"]]
    with unit_of_work(engine) as session:  # a desk update that does not touch searched fields
        admin = get_user(session, "admin")
        update_ticket(session, actor=admin, key=k["plain"], comment="on it",
                      changes={"priority": "high"})  # fmt: skip
    assert keys_of(engine, TicketFilter(text="zurich")) == [k["plain"]]


def test_tui_search_box_finds_zoe_by_typing(engine: Engine) -> None:
    k = build_search_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        await pilot.press("slash")
        assert app.focused is screen.query_one("#f-text", Input)
        await pilot.press(*"muller", "enter")
        await wait_until(pilot, lambda: table_keys(app, "#tickets") == [k["müller"]], "muller")
        await pilot.press("slash", *["backspace"] * 6, *"zoe", "enter")
        both = sorted([k["zoë"], k["zoe"]])
        await wait_until(pilot, lambda: sorted(table_keys(app, "#tickets")) == both, "zoe")

    run_app(engine, desk("admin"), script)


def test_migration_backfills_the_folded_column(engine: Engine) -> None:
    k = build_search_desk(engine)
    with migrate.migration_connection(engine) as connection:
        command.downgrade(migrate.alembic_config(connection), "0020")
    migrate.upgrade(engine)
    assert sorted(keys_of(engine, TicketFilter(text="zoe"))) == sorted([k["zoe"], k["zoë"]])
    assert keys_of(engine, TicketFilter(text="ｍｕｌｌｅｒ")) == [k["müller"]]
    assert migrate.schema_drift(engine) == []
