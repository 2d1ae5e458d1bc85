"""Collision safety (issue 16, item 5): every ticket write bumps ``ticket.version``, and a
write based on a version someone changed since is refused in one line saying who changed what
and when, writing nothing (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict
from cxdesk.store import tickets as ops
from cxdesk.store.db import STALE_WRITE, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Ticket, simulated_clock, utcnow
from cxdesk.store.ticket_versions import StaleVersion
from cxdesk.store.unpull import unpull
from tests.cli_helpers import (
    Cli,
    CliResult,
    assert_one_error_line,
    dump_tables,
    run_console_script,
)
from tests.desk import build_small_desk, pull
from tests.test_cli import TICKET_TABLES, demo_desk, pulled  # noqa: F401 (demo_desk: a fixture)
from tests.test_store_tickets import check_in
from tests.threads import at_once

WRITTEN = ["ticket", "comment", "event"]


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def version(engine: Engine, key: str) -> int:
    with read_session(engine) as s:
        return ops.get_ticket(s, key).version


def update(engine: Engine, key: str, who: str, if_version: int | None, **changes: str) -> None:
    with unit_of_work(engine) as s:
        ops.update_ticket(s, actor=get_user(s, who), key=key, comment=f"by {who}",
                          changes=changes, if_version=if_version)  # fmt: skip


def test_every_write_bumps_the_version_once(desk: Engine) -> None:
    key = str(check_in(desk, product="Stats iQ").key)
    assert version(desk, key) == 1
    assert pull(desk, "kenji", "Stats iQ") == key  # the pull's own SQL
    assert version(desk, key) == 2
    with unit_of_work(desk) as s:  # undo-pull: a Core update too
        unpull(s, actor=get_user(s, "kenji"), key=key)
    assert version(desk, key) == 3
    # One update flushes the fields, the status and the comment: still one write.
    update(desk, key, "kenji", 3, priority="high", status="resolved")
    assert version(desk, key) == 4
    with unit_of_work(desk) as s:
        ops.add_comment(s, actor=get_user(s, "maya"), key=key, body="a note")
    assert version(desk, key) == 5


def test_a_stale_update_is_refused_naming_who_changed_what_and_when(desk: Engine) -> None:
    key = str(check_in(desk, product="Stats iQ").key)
    start = utcnow()
    with simulated_clock(lambda: start):
        update(desk, key, "kenji", 1, status="resolved")
    before = dump_tables(desk, WRITTEN)
    with simulated_clock(lambda: start + timedelta(seconds=20)), pytest.raises(Conflict) as err:
        update(desk, key, "maya", 1, priority="low")
    assert str(err.value) == "Kenji changed status to resolved 20 s ago; reload and try again"
    assert isinstance(err.value, StaleVersion) and err.value.current == 2
    assert dump_tables(desk, WRITTEN) == before  # nothing written
    update(desk, key, "maya", 2, priority="low")  # with the version now shown: saved
    assert version(desk, key) == 3


def test_several_changes_name_the_latest_and_count_the_rest(desk: Engine) -> None:
    key = str(check_in(desk, product="Stats iQ").key)
    start = utcnow()
    with simulated_clock(lambda: start):
        update(desk, key, "kenji", None, priority="high")
    with simulated_clock(lambda: start + timedelta(seconds=1)), unit_of_work(desk) as s:
        ops.add_comment(s, actor=get_user(s, "kenji"), key=key, body="on it")
    with simulated_clock(lambda: start + timedelta(minutes=3)):
        update(desk, key, "maya", None, owner="maya")
    with simulated_clock(lambda: start + timedelta(minutes=4)), pytest.raises(Conflict) as err:
        update(desk, key, "kenji", 1, status="resolved")
    assert str(err.value) == (
        "Maya changed owner to maya 1 min ago, and 2 more changes; reload and try again"
    )


def test_a_version_never_reached_is_refused(desk: Engine) -> None:
    key = str(check_in(desk).key)
    with pytest.raises(Conflict, match=r"has no version 7 \(it is at 1\)"):
        update(desk, key, "maya", 7, priority="low")


def test_two_racing_updates_with_one_version_one_wins(desk: Engine) -> None:
    key = str(check_in(desk, product="Stats iQ").key)
    errors = at_once(lambda who: update(desk, key, who, 1, priority="low"), ["maya", "kenji"])
    assert len(errors) == 1 and isinstance(errors[0], StaleVersion), errors
    assert "changed priority to low" in str(errors[0])
    assert version(desk, key) == 2


def test_an_unlocked_read_modify_write_refuses_a_concurrent_change(desk: Engine) -> None:
    """The ORM's version check (``version_id_col``): a ticket read, then written by someone
    else, then written from the first read, is refused rather than overwriting."""
    key = str(check_in(desk).key)
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket).where(Ticket.key == key)).one()
    title = ticket.title
    update(desk, key, "maya", None, priority="high")  # someone else, committed
    ticket.title = "overwritten"
    with pytest.raises(Conflict, match=STALE_WRITE), transaction(desk) as s:
        s.add(ticket)
        s.flush()
    with read_session(desk) as s:
        stored = ops.get_ticket(s, key)
        assert (stored.title, stored.priority, stored.version) == (title, "high", 2)


# -- the command line --------------------------------------------------------------------------


def shown_version(cli: Cli, key: str) -> int:
    shown = cli("ticket", "show", key, "--json")
    assert shown.exit_code == 0, str(shown)
    return int(json.loads(shown.stdout)["version"])


@pytest.mark.usefixtures("demo_desk")
def test_update_if_version_refuses_a_stale_one_in_one_line(cli: Cli, engine: Engine) -> None:
    key = pulled(cli, "360", "maya")
    read = shown_version(cli, key)
    first = cli("ticket", "update", key, "--as", "lena", "--status", "resolved",
                "--comment", "fixed", "--if-version", str(read))  # fmt: skip
    assert first.exit_code == 0, str(first)
    assert shown_version(cli, key) == read + 1
    before = dump_tables(engine, TICKET_TABLES)
    stale = cli("ticket", "update", key, "--as", "maya", "--priority", "high",
                "--comment", "urgent", "--if-version", str(read))  # fmt: skip
    assert_one_error_line(stale, "Lena", "changed status to resolved", "; reload and try again")
    never = cli("ticket", "update", key, "--as", "maya", "--priority", "high",
                "--comment", "urgent", "--if-version", "0")  # fmt: skip
    assert_one_error_line(never, "has no version 0")
    assert dump_tables(engine, TICKET_TABLES) == before


@pytest.mark.slow
@pytest.mark.usefixtures("demo_desk")
def test_two_racing_update_processes_with_one_version_one_succeeds(
    cli: Cli, engine: Engine
) -> None:
    key = pulled(cli, "360", "maya")
    read = str(shown_version(cli, key))
    results: dict[str, CliResult] = {}

    def run(who: str) -> None:
        results[who] = run_console_script(
            "ticket", "update", key, "--as", who, "--priority", "low",
            "--comment", f"by {who}", "--if-version", read,
        )  # fmt: skip

    assert at_once(run, ["maya", "lena"]) == []
    codes = sorted(result.exit_code for result in results.values())
    assert codes == [0, 1], [str(r) for r in results.values()]
    loser = next(r for r in results.values() if r.exit_code == 1)
    assert_one_error_line(loser, "priority to low")  # with the pull, when it was seconds ago
    assert shown_version(cli, key) == int(read) + 1
