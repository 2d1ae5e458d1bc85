"""Names in the order their language writes them (issue 17 item 3): a Japanese check-in's
ticket reads 山田 太郎, and the hall board shows a Japanese customer by family name and 様."""

from __future__ import annotations

from sqlalchemy import Engine

from cxdesk.i18n import DESK_LANGUAGE_SETTING
from cxdesk.names import full_name
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import set_setting
from cxdesk.store.hall import hall_board, hall_name
from cxdesk.store.tickets import get_ticket
from tests.desk import build_small_desk
from tests.test_hall_board import walk_in


def test_family_name_first_where_the_language_writes_it() -> None:
    assert full_name("太郎", "山田", "ja") == "山田 太郎"
    assert full_name("Taro", "Yamada", "en") == "Taro Yamada"
    assert full_name("Ada", " ", None) == "Ada"
    assert hall_name("山田 太郎", "ja") == "山田 様"
    assert hall_name("Ada Lovelace", "fr") == "Ada L."
    assert hall_name("ada@example.com", "ja") == "Guest"  # never a contact, in any order


def test_a_japanese_check_in_reads_yamada_taro_on_the_ticket_and_the_board(
    engine: Engine,
) -> None:
    build_small_desk(engine)
    ada = walk_in(engine, "Ada", "Lovelace")  # checked in while the desk spoke English
    with transaction(engine) as s:
        set_setting(s, DESK_LANGUAGE_SETTING, "ja")
    yamada = walk_in(engine, "太郎", "山田")
    with read_session(engine) as s:
        ticket = get_ticket(s, yamada)
        assert ticket.customer_name == "山田 太郎"
        assert ticket.title.startswith("山田 太郎 ")
        assert ticket.customer_language == "ja"  # the order it was written in, for the board
        assert get_ticket(s, ada).customer_name == "Ada Lovelace"
    with read_session(engine) as s:
        shown = {row.key: row.customer for row in hall_board(s).waiting}
    assert shown == {ada: "Ada L.", yamada: "山田 様"}


def test_a_name_in_kanji_or_kana_is_family_first_whatever_the_language() -> None:
    assert full_name("太郎", "山田", "en") == "山田 太郎"  # a Japanese visitor at an English desk
    assert full_name("タロウ", "ヤマダ", "fr") == "ヤマダ タロウ"
    assert full_name("Taro", "山田", "en") == "Taro 山田"  # mixed scripts: the language's order
    assert hall_name("山田 太郎", "en") == "山田 様"
    assert hall_name("Ada Lovelace", None) == "Ada L."


def test_a_japanese_visitor_checked_in_in_english_reads_yamada_taro_on_the_board(
    engine: Engine,
) -> None:
    """The check-in's language left on the desk's (English): the names' script decides."""
    build_small_desk(engine)
    yamada = walk_in(engine, "太郎", "山田")
    with read_session(engine) as s:
        ticket = get_ticket(s, yamada)
        assert (ticket.customer_name, ticket.title.split(" needs")[0]) == ("山田 太郎", "山田 太郎")
    with read_session(engine) as s:
        assert [row.customer for row in hall_board(s).waiting] == ["山田 様"]
