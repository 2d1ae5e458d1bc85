"""Dates and times as people read them (issue 17 item 3): in the desk's time zone, written as
the current language writes them (Babel), with the offset in the CLI's human output; JSON
keeps ISO 8601 with the offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cxdesk.i18n import in_language
from cxdesk.local_time import iso_time, shown_time, use_zone
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import TIME_ZONE_SETTING, set_setting
from cxdesk.store.tickets import get_ticket
from tests.desk import build_small_desk
from tests.test_hall_board import walk_in

NOON_UTC = datetime(2026, 12, 7, 12, 5, tzinfo=UTC)


def test_a_time_in_the_desks_zone_as_each_language_writes_it() -> None:
    use_zone("Europe/Paris")
    with in_language("fr"):
        assert shown_time(NOON_UTC) == "7 déc. 2026, 13:05"
        assert shown_time(NOON_UTC, offset=True) == "7 déc. 2026, 13:05 +01:00"
    with in_language("ja"):
        assert shown_time(NOON_UTC) == "2026年12月7日 13:05"
    with in_language("it"):
        assert shown_time("2026-12-07T12:05:00+00:00") == "7 dic 2026, 13:05"
    assert shown_time(NOON_UTC.replace(tzinfo=None)) == "Dec 7, 2026, 1:05\u202fPM"  # naive: UTC
    assert shown_time(None) == "" and shown_time("") == ""
    assert iso_time(NOON_UTC) == "2026-12-07T13:05:00+01:00"
    use_zone("Not/AZone")  # a bad name: UTC, as the desk's setting reads it
    with in_language("fr"):
        assert shown_time(NOON_UTC, offset=True) == "7 déc. 2026, 12:05 +00:00"


def test_the_cli_shows_times_in_the_desks_zone_with_its_offset_and_json_keeps_iso(
    engine: Engine, cli: Any
) -> None:
    build_small_desk(engine)
    with transaction(engine) as s:
        set_setting(s, TIME_ZONE_SETTING, "Asia/Tokyo")
    key = walk_in(engine, "Ada", "Lovelace")
    with read_session(engine) as s:
        created = get_ticket(s, key).created_at
    tokyo = shown_time(created, offset=True, zone=ZoneInfo("Asia/Tokyo"))
    assert tokyo.endswith(" +09:00")

    shown = cli("ticket", "show", key).stdout
    assert f"created         {tokyo}" in shown
    assert tokyo in cli("tickets", "list").stdout
    record = json.loads(cli("ticket", "show", key, "--json").stdout)
    assert datetime.fromisoformat(record["created_at"]) == created  # ISO 8601, with an offset
    assert datetime.fromisoformat(record["created_at"]).tzinfo is not None
