"""A ticket's SLA as the desk shows it (``store.sla_display``): its words, the list's SLA sort
in SQL, the queues' counts and the export's columns, on SQLite and PostgreSQL.

The SLA columns are set on the tickets directly (as the policy code sets them), at states
spread around a fixed ``T0``; every state is read at a given ``now``.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.local_time import shown_zone
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_team
from cxdesk.store.export import EXPORT_COLUMNS, export_tickets
from cxdesk.store.models import Ticket, utcnow
from cxdesk.store.pages import kanban_page
from cxdesk.store.sla import SlaState
from cxdesk.store.sla_display import SlaTimes, queue_sla, sla_words, target_lines
from cxdesk.store.tickets import TicketDraft, create_ticket
from cxdesk.store.views import Sort, TicketFilter, ticket_page
from tests.cli_helpers import Cli
from tests.desk import build_small_desk


def _this_minute_clear_of_midnight() -> datetime:
    """This minute, moved by an hour when the cases' times (-10 to +45 minutes of it) would
    straddle midnight in the zone the tests' desk shows (UTC: ``conftest`` resets it): a due
    time on another day reads as a date, not ``14:10``. The hour keeps it on today's date, so
    "today" means the same to the tickets and the clock."""
    now = utcnow().replace(second=0, microsecond=0)
    local = now.astimezone(UTC)
    if (local - timedelta(minutes=15)).date() == (local + timedelta(minutes=45)).date():
        return now
    return now - timedelta(hours=1) if local.hour == 23 else now + timedelta(hours=1)


T0 = _this_minute_clear_of_midnight()
"""The tests' "now": this minute (see above), so the list's default filter (last 30 days)
holds them."""


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


SLA_CASES: dict[str, dict[str, Any]] = {
    "late": {"first_response_due_at": minutes(-5), "first_response_warn_at": minutes(-8)},
    "warn": {"first_response_due_at": minutes(2), "first_response_warn_at": minutes(-1)},
    "fine": {"first_response_due_at": minutes(30), "first_response_warn_at": minutes(20)},
    "met": {
        "first_response_due_at": minutes(-5), "first_responded_at": minutes(-9),
        "resolution_due_at": minutes(40), "resolution_warn_at": minutes(30),
    },
    "paused": {
        "first_response_due_at": minutes(10), "first_response_warn_at": minutes(5),
        "sla_paused_at": minutes(-1),
    },
    "none": {},
}  # fmt: skip
"""Customer name -> the SLA columns of that customer's ticket (``none``: no policy)."""


def build_sla_desk(engine: Engine, team: str = "360") -> dict[str, str]:
    """The small desk with one waiting ticket per ``SLA_CASES`` entry in ``team``; name ->
    key. Created in the cases' order, so ids rise in it."""
    build_small_desk(engine)
    keys = {}
    with transaction(engine) as session:
        for name, columns in SLA_CASES.items():
            draft = TicketDraft(title=f"{name} ticket", team=team, customer_name=name)
            ticket = create_ticket(session, actor=None, draft=draft)
            if columns:
                ticket.sla_policy_id = 1
                for column, value in columns.items():
                    setattr(ticket, column, value)
            session.add(ticket)
            session.flush()
            keys[name] = str(ticket.key)
    return keys


def _times(engine: Engine, key: str) -> SlaTimes | None:
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        return SlaTimes.of(ticket)


def test_words_of_each_state(engine: Engine) -> None:
    keys = build_sla_desk(engine)
    words = {}
    for name, key in keys.items():
        times = _times(engine, key)
        words[name] = sla_words(times.view(T0) if times else None, T0)
    due = (T0 + timedelta(minutes=30)).astimezone(shown_zone()).strftime("%H:%M")
    assert words == {
        "late": "breached · 5m over",
        "warn": "warning · 2m left",
        "fine": f"on track · due {due}",
        "met": f"on track · due {(T0 + timedelta(minutes=40)).astimezone(shown_zone()):%H:%M}",
        "paused": "paused · 11m left",  # what was left when the pause began
        "none": "",
    }
    late = _times(engine, keys["late"])
    fine = _times(engine, keys["fine"])
    assert late is not None and fine is not None
    assert sla_words(late.view(T0), T0, compact=True) == "breached 5m"
    assert sla_words(fine.view(T0), T0, compact=True) == f"due {due}"
    # The clock moves: warning turns breached, with no read in between.
    warn = _times(engine, keys["warn"])
    assert warn is not None and sla_words(warn.view(minutes(3)), minutes(3)) == (
        "breached · 1m over"
    )


def test_target_lines_say_each_target(engine: Engine) -> None:
    keys = build_sla_desk(engine)
    times = _times(engine, keys["met"])
    assert times is not None
    view = times.view(T0)
    assert view is not None
    lines = {name: (happened, state) for name, _due, happened, state in target_lines(view, T0)}
    met_at = minutes(-9).astimezone(shown_zone()).strftime("%H:%M")
    assert lines == {
        "first response": (f"met at {met_at}", SlaState.met),
        "resolution": ("on track · 40m left", SlaState.on_track),
    }


def test_the_list_sorts_by_the_nearest_running_due_time(engine: Engine) -> None:
    keys = build_sla_desk(engine)
    with read_session(engine) as session:
        nearest = ticket_page(session, TicketFilter(), sort=Sort("sla", descending=False), now=T0)
        farthest = ticket_page(session, TicketFilter(), sort=Sort("sla"), now=T0)
    names = {key: name for name, key in keys.items()}
    # Breached first (due in the past), then by due time; paused and no SLA last, by id.
    assert [names[r.key] for r in nearest] == ["late", "warn", "fine", "met", "paused", "none"]
    assert [names[r.key] for r in farthest] == ["met", "fine", "warn", "late", "none", "paused"]
    row = nearest[0]
    assert row.sla is not None and row.sla.view(T0) is not None
    assert nearest[-1].sla is None


def test_queues_count_breached_and_warning_waiting_tickets(engine: Engine) -> None:
    build_sla_desk(engine)
    with read_session(engine) as session:
        by_team = queue_sla(session, now=T0)
        team_id = get_team(session, "360").id
        later = queue_sla(session, now=minutes(3))
    assert team_id is not None
    sla = by_team[team_id]
    assert (sla.breached, sla.warning) == (1, 1)
    assert sla.nearest_due == minutes(-5)
    assert sla.words(T0) == ("1 breached · 1 warning", SlaState.breached)
    assert (later[team_id].breached, later[team_id].warning) == (2, 0)


def test_kanban_cards_carry_their_sla(engine: Engine) -> None:
    keys = build_sla_desk(engine)
    with read_session(engine) as session:
        cards = {card.key: card for card in kanban_page(session, "new")}
    late = cards[keys["late"]].sla
    assert late is not None and late.view(T0) is not None
    assert cards[keys["none"]].sla is None


def test_exports_carry_the_state_and_due_time(engine: Engine, tmp_path: Path) -> None:
    keys = build_sla_desk(engine)
    order = Sort("sla", descending=False)
    csv_path, xlsx_path = tmp_path / "t.csv", tmp_path / "t.xlsx"
    export_tickets(engine, TicketFilter(), csv_path, sort=order)
    export_tickets(engine, TicketFilter(), xlsx_path, sort=order)
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(EXPORT_COLUMNS.values())
    assert rows[0][-2:] == ["SLA state", "SLA due"]
    by_key = {row[0]: row[-2:] for row in rows[1:]}
    # States as at the export (the real clock, a little after T0).
    assert by_key[keys["late"]] == ["breached", minutes(-5).astimezone().isoformat()]
    assert by_key[keys["paused"]][0] == "paused"
    assert by_key[keys["none"]] == ["", ""]
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet is not None
    cells = {row[0]: row[-2:] for row in sheet.iter_rows(min_row=2, values_only=True)}
    due = minutes(-5).astimezone().replace(tzinfo=None)
    assert cells[keys["late"]] == ("breached", due)
    assert cells[keys["none"]] == (None, None)


def test_times_of_a_ticket_without_a_policy_are_none() -> None:
    ticket = Ticket(title="t", status="new", origin_team_id=1, team_id=1,
                    created_at=datetime(2026, 12, 7, tzinfo=UTC))  # fmt: skip
    assert SlaTimes.of(ticket) is None


def test_cli_lists_the_sla_and_exports_sorted_by_it(
    engine: Engine, cli: Cli, tmp_path: Path
) -> None:
    keys = build_sla_desk(engine)
    listed = cli("tickets", "list")
    assert listed.exit_code == 0, str(listed)
    lines = {line.split()[1]: line for line in listed.stdout.splitlines() if "EXP-" in line}
    assert "breached · " in lines[keys["late"]] and "paused · " in lines[keys["paused"]]
    assert "sla" in listed.stdout
    out = tmp_path / "urgent.csv"
    exported = cli("tickets", "export", "-o", str(out), "--sort", "sla", "--ascending")
    assert exported.exit_code == 0, str(exported)
    with out.open(newline="", encoding="utf-8-sig") as handle:
        order = [row[0] for row in list(csv.reader(handle))[1:]]
    assert order[:2] == [keys["late"], keys["warn"]] and order[-2:] == [
        keys["paused"],
        keys["none"],
    ]
    refused = cli("tickets", "export", "-o", str(out), "--sort", "nope")
    assert refused.exit_code == 1 and "Cannot sort by 'nope'" in refused.output
