"""Human labels for the desk's codes (issue 17 item 5): event kinds, channels, statuses,
priorities and roles in the current language where people read them; codes in ``--json``."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine

from cxdesk.i18n import in_language
from cxdesk.labels import event_label, field_value, label, owner_choices
from cxdesk.store.db import read_session
from cxdesk.store.directory import form_choices
from tests.desk import build_small_desk
from tests.test_hall_board import walk_in


def test_codes_have_labels_in_each_language_and_unknown_ones_show_as_they_are() -> None:
    assert label("in_person") == "In person"
    assert event_label("ticket.status_changed") == "Status changed"
    with in_language("ja"):
        assert label("in_person") == "対面"
        assert label("new") == "新規" and label("critical") == "緊急"
        assert label("volunteer") == "ボランティア"
        assert event_label("ticket.status_changed") == "ステータスを変更"
    with in_language("fr"):
        assert label("in_person") == "En personne"
        assert label("escalated") == "Escaladé" and label("high") == "Haute"
        assert event_label("ticket.status_changed") == "Statut changé"
    with in_language("it"):
        assert event_label("message.sent") == "Messaggio inviato"
    assert label("Follow up later") == "Follow up later"  # a custom status
    assert field_value("status", "open") == "Open" and field_value("title", "new") == "new"
    assert event_label("future.kind") == "future.kind"


def test_ticket_show_labels_what_it_shows_and_json_keeps_the_codes(
    engine: Engine, cli: Any
) -> None:
    build_small_desk(engine)
    key = walk_in(engine, "Ada", "Lovelace")
    shown = cli("ticket", "show", key).stdout
    assert "  source          Check-in" in shown
    assert "│ Created " in shown and "ticket.created" not in shown
    record = json.loads(cli("ticket", "show", key, "--json").stdout)
    assert (record["source"], record["status"]) == ("checkin", "new")
    assert record["log"][0]["kind"] == "ticket.created"


def test_owner_pickers_offer_people_by_name(engine: Engine) -> None:
    build_small_desk(engine)
    with read_session(engine) as s:
        choices = form_choices(s)
    offered = owner_choices(choices.members_by_team["360"], choices.names)
    assert offered == [("Maya", "maya"), ("Omar", "omar")]
