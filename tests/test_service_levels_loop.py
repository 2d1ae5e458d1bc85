"""Issue 16's "Done when", on the demo desk, on SQLite and PostgreSQL.

A checked-in ticket shows its due time (``ticket show`` and the ticket screen); waiting on the
customer moves it out by the paused time; it turns warning then breached on time (a controlled
clock: ``simulated_clock`` for the desk's writes, ``run_once(now=)`` for the workers) and the
breach runs the demo's workflow once with two workers at the same instant; two experts save
over one version and the second is refused with who and what, nothing of theirs written; a
macro applies with one key. (The demo's digest running once at its time with two workers:
``tests/test_scheduled_desk.py``.)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select
from textual.pilot import Pilot
from textual.widgets import Static

from cxdesk.app import CxDeskApp
from cxdesk.store.db import read_session
from cxdesk.store.models import Comment, SlaAlert, Ticket, simulated_clock, utcnow
from tests.cli_helpers import Cli, assert_one_error_line
from tests.test_delivery import CUSTOMER, ok
from tests.test_scheduled_desk import two_workers_at
from tests.test_tui_macros import open_picker
from tests.test_tui_ticket_detail import run_as
from tests.tui_helpers import notified, wait_until

WAITING = "Waiting on customer"  # the demo's paused status
MINUTE = timedelta(minutes=1)


@pytest.fixture
def demo(cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # the desk app's own worker stays out of it
    ok(cli("demo"))
    return engine


def check_in(cli: Cli) -> str:
    pairs = [arg for name, value in CUSTOMER.items() for arg in ("--answer", f"{name}={value}")]
    [key] = ok(cli("checkin", "--as", "vera", *pairs)).split()
    return key


def shown(cli: Cli, key: str, at: datetime | None = None) -> dict[str, Any]:
    """``ticket show --json`` as ines, read at ``at`` (default: now)."""
    moment = at or utcnow()
    with simulated_clock(lambda: moment):
        result: dict[str, Any] = json.loads(
            ok(cli("ticket", "show", key, "--json", "--as", "ines"))
        )
    return result


def due(view: dict[str, Any], target: str) -> datetime:
    return datetime.fromisoformat(view["sla"]["targets"][target]["due_at"])


def breach_notes(engine: Engine, key: str) -> list[str]:
    with read_session(engine) as s:
        statement = (
            select(Comment.body)
            .join(Ticket, col(Ticket.id) == col(Comment.ticket_id))
            .where(Ticket.key == key, col(Comment.body).startswith("SLA breached"))
        )
        return list(s.exec(statement).all())


def test_a_checked_in_ticket_pauses_warns_and_breaches_once(cli: Cli, demo: Engine) -> None:
    key = check_in(cli)
    created = shown(cli, key)
    sla = created["sla"]
    assert (sla["policy"], sla["state"]) == ("Event desk", "on_track")
    first_due, resolution_due = due(created, "first_response"), due(created, "resolution")
    checked_in_at = first_due - 10 * MINUTE  # the demo's targets: 10 and 45 desk minutes
    assert resolution_due == checked_in_at + 45 * MINUTE  # today and tomorrow: event days
    assert "SLA: on track" in ok(cli("ticket", "show", key, "--as", "ines"))

    # Waiting on the customer from minute 2 to minute 12: every due time moves out by 10.
    now = [checked_in_at + 2 * MINUTE]
    with simulated_clock(lambda: now[0]):
        ok(cli("ticket", "update", key, "--status", WAITING, "--comment", "asked for a log",
               "--as", "ines"))  # fmt: skip
        assert shown(cli, key)["sla"]["state"] == "paused"
        now[0] = checked_in_at + 12 * MINUTE
        ok(cli("ticket", "update", key, "--status", "open", "--comment", "log came",
               "--as", "ines"))  # fmt: skip
    resumed = shown(cli, key)
    assert due(resumed, "first_response") == first_due + 10 * MINUTE
    assert due(resumed, "resolution") == resolution_due + 10 * MINUTE

    # Warning at 75% of the 10 minutes (7.5 + the 10 paused), breached at 20; each once.
    warn_at = checked_in_at + 17 * MINUTE + 30 * timedelta(seconds=1)
    two_workers_at(demo, warn_at - timedelta(seconds=1))
    assert shown(cli, key, warn_at - timedelta(seconds=1))["sla"]["state"] == "on_track"
    two_workers_at(demo, warn_at)
    warned = shown(cli, key, warn_at)
    assert warned["sla"]["state"] == "warning"
    assert warned["priority"] == "high"  # the demo's "SLA warning: raise the priority"
    two_workers_at(demo, checked_in_at + 20 * MINUTE)
    two_workers_at(demo, checked_in_at + 21 * MINUTE)
    assert shown(cli, key, checked_in_at + 21 * MINUTE)["sla"]["state"] == "breached"
    assert breach_notes(demo, key) == [
        f"SLA breached: first response due {first_due + 10 * MINUTE:%Y-%m-%d %H:%M} UTC."
    ]
    with read_session(demo) as s:
        kinds = s.exec(
            select(SlaAlert.target, SlaAlert.kind)
            .join(Ticket, col(Ticket.id) == col(SlaAlert.ticket_id))
            .where(Ticket.key == key)
            .order_by(col(SlaAlert.id))
        ).all()
    assert [tuple(k) for k in kinds] == [
        ("first_response", "warning"),
        ("first_response", "breached"),
    ]


def test_the_second_save_over_one_version_is_refused_with_who_and_what(
    cli: Cli, demo: Engine
) -> None:
    key = check_in(cli)
    version = str(shown(cli, key)["version"])
    ok(cli("ticket", "update", key, "--status", "resolved", "--comment", "fixed at the desk",
           "--if-version", version, "--as", "omar"))  # fmt: skip
    refused = cli("ticket", "update", key, "--priority", "high", "--comment", "my note",
                  "--if-version", version, "--as", "ines")  # fmt: skip
    line = assert_one_error_line(refused, "Omar Haddad", "reload and try again")
    assert "status to resolved" in line or "note" in line, line
    after = shown(cli, key)
    assert (after["status"], after["priority"]) == ("resolved", "medium")
    assert "my note" not in json.dumps(after)


def test_a_macro_applies_with_one_key_and_stops_the_clock(cli: Cli, demo: Engine) -> None:
    key = check_in(cli)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_picker(app, pilot, key)
        lines = screen.query_one("#sla-lines", Static)
        assert "due" in str(lines.render())  # the checked-in ticket shows its due time
        await pilot.press(*"waiting", "enter")
        await wait_until(
            pilot, lambda: notified(app, f"{key}: macro Waiting on customer applied"), "applied"
        )

    run_as(demo, "ines", script)
    after = shown(cli, key)
    assert (after["status"], after["sla"]["state"]) == (WAITING, "paused")
    assert after["sla"]["paused_since"] is not None and utcnow() >= datetime.fromisoformat(
        after["sla"]["paused_since"]
    )
