"""SLA policies and calendars as data: the seed's sections, ``cxdesk sla list|show``, the
``paused`` status category and ``ticket show``'s SLA, through the CLI as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from cxdesk.store.db import read_session
from cxdesk.store.sla_policies import list_calendars, list_policies
from tests.cli_helpers import Cli, assert_one_error_line, dump_tables, table_counts
from tests.test_delivery import CUSTOMER, EXPERT, check_in_and_pull, ok

SEED = """\
[[teams]]
name = "360"

[[statuses]]
name = "Waiting on customer"
category = "paused"

[[sla_calendars]]
name = "Office"
time_zone = "Europe/Paris"
weekly = { mon = [["09:00", "12:00"], ["13:00", "17:00"]], fri = [["09:00", "17:00"]] }
exceptions = [{ date = 2026-12-25, name = "Christmas", hours = [] }]

[[sla_policies]]
name = "Urgent"
priority = "high"
first_response_minutes = 5

[[sla_policies]]
name = "Standard"
team = "360"
calendar = "Office"
first_response_minutes = 30
resolution_minutes = 480
warn_percent = 80
"""

BAD_SEED = """\
[[teams]]
name = "360"

[[sla_calendars]]
name = "Mars"
time_zone = "Mars/Olympus"
[sla_calendars.weekly]
mon = [["09:00", "25:00"]]
tue = [["12:00", "09:00"]]
wed = [["09:00", "12:00"], ["11:00", "13:00"]]

[[sla_policies]]
name = "Nowhere"
team = "Ghosts"
calendar = "Moon"

[[sla_policies]]
name = "Too soon"
first_response_minutes = 0
warn_percent = 100
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "seed.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_seed_sections_applied_twice_change_nothing(
    cli: Cli, engine: Engine, first_admin: None, tmp_path: Path
) -> None:
    seed = write(tmp_path, SEED)
    assert cli("seed", seed).exit_code == 0
    before = dump_tables(engine, ["sla_calendar", "sla_policy", "status"])
    second = cli("seed", seed)
    assert second.stdout.strip() == "Seed applied: nothing to change.", str(second)
    assert dump_tables(engine, ["sla_calendar", "sla_policy", "status"]) == before
    with read_session(engine) as s:
        assert [p.name for p in list_policies(s)] == ["Urgent", "Standard"]  # file order
        [office] = list_calendars(s)
        assert office.exceptions == [{"date": "2026-12-25", "name": "Christmas", "hours": []}]
    # Moved in the file: tried in the new order.
    urgent, standard = SEED.split("[[sla_policies]]")[1:]
    reordered = SEED.split("[[sla_policies]]")[0] + "[[sla_policies]]" + standard
    assert cli("seed", write(tmp_path, reordered + "[[sla_policies]]" + urgent)).exit_code == 0
    with read_session(engine) as s:
        assert [p.name for p in list_policies(s)] == ["Standard", "Urgent"]


def test_a_bad_seed_says_each_problem_in_one_line_and_applies_nothing(
    cli: Cli, engine: Engine, first_admin: None, tmp_path: Path
) -> None:
    before = table_counts(engine)
    result = cli("seed", write(tmp_path, BAD_SEED))
    assert result.exit_code == 1 and "Traceback" not in result.output, str(result)
    expected = [
        ("line 4", "'Mars/Olympus' is not a time zone"),
        ("line 4", "weekly.mon: '25:00' is not a time from 00:00 to 24:00"),
        ("line 4", "weekly.tue: 12:00-09:00 ends before it starts"),
        ("line 4", "weekly.wed: hours overlap at 11:00"),
        ("line 12", "No team named 'Ghosts'"),
        ("line 12", "No SLA calendar named 'Moon'"),
        ("line 12", "no target"),
        ("line 17", "first_response_minutes must be a whole number of minutes from 1"),
        ("line 17", "warn_percent must be a whole number from 1 to 99"),
    ]
    lines = result.stderr.splitlines()
    for where, fragment in expected:
        assert sum(where in line and fragment in line for line in lines) == 1, (fragment, lines)
    assert table_counts(engine) == before


def test_sla_list_and_show(cli: Cli, first_admin: None, tmp_path: Path) -> None:
    assert cli("seed", write(tmp_path, SEED)).exit_code == 0
    listed = cli("sla", "list", "--as", "admin")
    assert listed.exit_code == 0, str(listed)
    rows = [line for line in listed.stdout.splitlines() if "Urgent" in line or "Standard" in line]
    assert "any" in rows[0] and "5m" in rows[0] and "around the clock" in rows[0]
    assert "360" in rows[1] and "8h 00m" in rows[1] and "80%" in rows[1] and "Office" in rows[1]
    records = json.loads(cli("sla", "list", "--json", "--as", "admin").stdout)
    assert [r["name"] for r in records] == ["Urgent", "Standard"]

    shown = cli("sla", "show", "Standard", "--as", "admin")
    assert shown.exit_code == 0, str(shown)
    assert "Calendar Office: " in shown.stdout and "(Europe/Paris)" in shown.stdout
    assert "09:00-12:00, 13:00-17:00" in shown.stdout and "Christmas" in shown.stdout
    assert_one_error_line(cli("sla", "show", "Gold", "--as", "admin"), "No SLA policy or calendar")


def test_status_add_takes_the_paused_category(cli: Cli, first_admin: None) -> None:
    added = cli("status", "add", "On hold", "--category", "paused", "--as", "admin")
    assert added.exit_code == 0, str(added)
    assert "On hold" in cli("status", "list", "--as", "admin").stdout
    assert_one_error_line(
        cli("status", "add", "Odd", "--category", "sleeping", "--as", "admin"), "paused"
    )


def test_the_demo_tickets_show_their_sla(cli: Cli) -> None:
    assert cli("demo").exit_code == 0
    shown = json.loads(cli("ticket", "show", "EXP-1", "--json", "--as", "admin").stdout)
    sla = shown["sla"]
    assert sla["policy"] == "Event desk" and sla["state"] == "on_track"
    assert set(sla["targets"]) == {"first_response", "resolution"}
    assert sla["due_at"] == sla["targets"]["first_response"]["due_at"]
    text = cli("ticket", "show", "EXP-1", "--as", "admin").stdout
    assert "SLA: on track · first response due " in text and "(Event desk)" in text


def test_a_status_in_use_does_not_change_to_or_from_paused(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    """Its tickets' clocks would stay running (or stopped) under the new meaning."""
    ok(cli("demo"))
    seed = tmp_path / "paused.toml"
    seed.write_text('[[statuses]]\nname = "Follow up later"\ncategory = "paused"\n')
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    ok(cli("ticket", "update", key, "--status", "Follow up later", "--comment", "later",
           "--as", EXPERT))  # fmt: skip
    refused = cli("seed", str(seed), "--as", "admin")
    assert refused.exit_code == 1 and "cannot change to or from paused" in refused.output
    ok(cli("ticket", "update", key, "--status", "open", "--comment", "back", "--as", EXPERT))
    assert "Seed applied" in ok(cli("seed", str(seed), "--as", "admin"))
