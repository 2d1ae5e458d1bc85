"""Auto-assignment (``store.assign``) on SQLite and PostgreSQL: the oldest waiting ticket to the
least-loaded available member, never to an away expert or past the cap, with the pull's
events and messages; atomic under two workers at once; the CLI's ``--assign``."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.config import Settings
from cxdesk.engine.dispatch import auto_assign_and_dispatch, unit_of_work
from cxdesk.engine.outbox import list_outbox, outbox_to_dicts
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.store import directory
from cxdesk.store import tickets as ops
from cxdesk.store.assign import CAP_SETTING, auto_assign
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import Event, PresenceState, QueueAssign, Ticket, simulated_clock, utcnow
from cxdesk.store.presence import set_presence
from cxdesk.store.surveys import submit_response
from tests.cli_helpers import TEST_PASSWORD, Cli, assert_one_error_line, table_counts
from tests.test_outbox import ANSWERS, pull_one
from tests.test_outbox import desk as outbox_desk  # noqa: F401 (a fixture)
from tests.threads import held_in, until_waiting_on_lock


def present(engine: Engine, state: PresenceState, *usernames: str) -> None:
    with transaction(engine) as s:
        for username in usernames:
            set_presence(s, directory.get_user(s, username), state, heartbeat=True)


def make_auto(engine: Engine, queue: str = "360", *, cap: int | None = None) -> None:
    """``queue`` in auto mode; ``cap``: the desk's ``max_open_tickets``."""
    with transaction(engine) as s:
        directory.update_queue(s, actor=None, name=queue, assign=QueueAssign.auto)
        if cap is not None:
            directory.set_setting(s, CAP_SETTING, str(cap))


def waiting_tickets(engine: Engine, count: int, *, team: str = "360") -> list[str]:
    """``count`` tickets of ``team``, each a minute older than the next (oldest first)."""
    start = utcnow() - timedelta(hours=1)
    keys = []
    for index in range(count):
        moment = start + timedelta(minutes=index)
        with simulated_clock(lambda moment=moment: moment), unit_of_work(engine) as s:  # type: ignore[misc]
            draft = ops.TicketDraft(title=f"Walk-in {index}", team=team)
            keys.append(ops.create_ticket(s, actor=None, draft=draft).key or "")
    return keys


def owners(engine: Engine) -> dict[str, str | None]:
    with read_session(engine) as s:
        names = {u.id: u.username for u in directory.list_users(s)}
        rows = s.exec(select(Ticket.key, Ticket.owner_id).order_by(col(Ticket.id))).all()
    return {key or "": names.get(owner) if owner else None for key, owner in rows}


def test_a_pull_queue_assigns_nothing(outbox_desk: Engine) -> None:  # noqa: F811
    present(outbox_desk, PresenceState.available, "omar")
    waiting_tickets(outbox_desk, 1)
    assert auto_assign(outbox_desk) == []


def test_the_oldest_goes_to_the_least_loaded_available_member(outbox_desk: Engine) -> None:  # noqa: F811
    desk = outbox_desk
    keys = waiting_tickets(desk, 3)
    present(desk, PresenceState.available, "maya", "omar")
    with read_session(desk) as s:
        omar = directory.get_user(s, "omar")
    from cxdesk.engine.dispatch import pull_and_dispatch

    by_hand = pull_and_dispatch(desk, actor=omar, queue_name="360").key  # omar has one open
    assert by_hand == keys[0]
    make_auto(desk)
    first = auto_assign(desk)
    # maya (none open) takes the oldest left; then both have one, and omar (idle since his
    # pull) has waited longer than maya (just given hers).
    assert [(a.key, a.username) for a in first] == [(keys[1], "maya"), (keys[2], "omar")]


def test_an_away_expert_gets_nothing_in_auto_mode(outbox_desk: Engine) -> None:  # noqa: F811
    desk = outbox_desk
    make_auto(desk)
    keys = waiting_tickets(desk, 2)
    present(desk, PresenceState.away, "maya")
    present(desk, PresenceState.break_, "omar")
    assert auto_assign(desk) == []
    assert owners(desk) == dict.fromkeys(keys)
    present(desk, PresenceState.available, "omar")
    assigned = auto_assign(desk)
    assert [(a.key, a.username) for a in assigned] == [(keys[0], "omar"), (keys[1], "omar")]
    assert "maya" not in owners(desk).values()


def test_a_desk_that_stopped_beating_gets_nothing(outbox_desk: Engine) -> None:  # noqa: F811
    desk = outbox_desk
    make_auto(desk)
    keys = waiting_tickets(desk, 1)
    ten_ago = utcnow() - timedelta(minutes=10)
    with simulated_clock(lambda: ten_ago):
        present(desk, PresenceState.available, "omar")  # its last heartbeat, 10 minutes ago
    assert auto_assign(desk) == []
    assert owners(desk) == {keys[0]: None}


def test_the_cap_holds_tickets_back(outbox_desk: Engine) -> None:  # noqa: F811
    desk = outbox_desk
    make_auto(desk, cap=1)
    keys = waiting_tickets(desk, 3)
    present(desk, PresenceState.available, "maya", "omar")
    assigned = auto_assign(desk)
    assert sorted(a.username for a in assigned) == ["maya", "omar"]
    assert [a.key for a in assigned] == keys[:2]
    assert owners(desk)[keys[2]] is None


def test_the_customer_hears_exactly_as_for_a_pull(outbox_desk: Engine) -> None:  # noqa: F811
    desk = outbox_desk
    pulled = pull_one(desk)  # omar pulls by hand: the reference
    with read_session(desk) as s:
        by_pull = [
            (r["channel"], r["to"], r["subject"], r["body"])
            for r in outbox_to_dicts(s, list_outbox(s))
        ]
        pull_events = s.exec(
            select(Event.kind, Event.field_name, Event.to_value, Event.detail)
            .where(Event.ticket_id == ops.get_ticket(s, pulled).id)
            .order_by(col(Event.id))
        ).all()
    make_auto(desk)
    present(desk, PresenceState.available, "omar")
    with transaction(desk) as s:  # omar at his cap of one: free again once it is resolved
        ops.change_status(s, None, ops.get_ticket(s, pulled), directory.get_status(s, "resolved"))
    with transaction(desk) as s:
        directory.set_setting(s, CAP_SETTING, "1")
    present(desk, PresenceState.away, "maya")
    with unit_of_work(desk) as s:
        submit_response(s, actor=directory.get_user(s, "vera"), survey_name="checkin",
                        answers=ANSWERS)  # fmt: skip
    report = DeliveryWorker(desk, Settings(), configured_only=True).run_once()
    assert report.assigned == 1
    key = [k for k, owner in owners(desk).items() if owner == "omar" and k != pulled][0]
    with read_session(desk) as s:
        rows = outbox_to_dicts(s, list_outbox(s))
        by_auto = [(r["channel"], r["to"], r["subject"], r["body"]) for r in rows
                   if r["ticket"] == key]  # fmt: skip
        auto_events = s.exec(
            select(Event.kind, Event.field_name, Event.to_value, Event.detail)
            .where(Event.ticket_id == ops.get_ticket(s, key).id)
            .order_by(col(Event.id))
        ).all()
    assert by_auto == by_pull and len(by_pull) == 2  # the SMS and the email naming omar
    pulls = ("ticket.assigned_from_queue", "ticket.status_changed")
    assert [e for e in auto_events if e[0] in pulls] == [e for e in pull_events if e[0] in pulls]


@pytest.mark.slow
def test_two_workers_never_assign_one_ticket_twice(outbox_desk: Engine) -> None:  # noqa: F811
    """Two threads assign at once, each on its own engine connection: every ticket is given
    once, and the load stays even (no expert given two on one stale count)."""
    desk = outbox_desk
    make_auto(desk, cap=10)
    keys = waiting_tickets(desk, 24)
    present(desk, PresenceState.available, "maya", "omar")
    start = threading.Barrier(2)
    results: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = [a.key for a in auto_assign_and_dispatch(desk)]
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    given = results[0] + results[1]
    assert len(given) == len(set(given)) == 20  # the cap: ten each
    assert Counter(owners(desk).values()) == {"maya": 10, "omar": 10, None: 4}
    with read_session(desk) as s:
        logged = s.exec(
            select(Event.ticket_id).where(Event.kind == "ticket.assigned_from_queue")
        ).all()
    assert len(logged) == len(set(logged)) == 20
    assert set(given) <= set(keys)


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_desk(outbox_desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:  # noqa: F811
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    return cli


def test_queue_update_assign_auto_hands_out_what_waits(cli_desk: Cli, outbox_desk: Engine) -> None:  # noqa: F811
    keys = waiting_tickets(outbox_desk, 1)
    assert cli_desk("user", "status", "available", "--as", "omar").exit_code == 0
    result = cli_desk("queue", "update", "360", "--assign", "auto", "--as", "admin")
    assert result.exit_code == 0, str(result)
    assert "assigned by the desk to available experts" in result.stdout
    assert f"Assigned {keys[0]} to omar." in result.stdout
    more = waiting_tickets(outbox_desk, 1)
    result = cli_desk("user", "status", "available", "--as", "maya")
    assert f"Assigned {more[0]} to maya." in result.stdout


def test_queue_add_and_update_refuse_a_bad_mode(cli_desk: Cli, outbox_desk: Engine) -> None:  # noqa: F811
    before = table_counts(outbox_desk)
    result = cli_desk("queue", "add", "X", "--team", "360", "--assign", "robin", "--as", "admin")
    assert_one_error_line(result, "assign: must be one of pull, auto")
    result = cli_desk("queue", "update", "360", "--assign", "robin", "--as", "admin")
    assert_one_error_line(result, "assign: must be one of pull, auto")
    result = cli_desk("queue", "update", "Nope", "--assign", "auto", "--as", "admin")
    assert_one_error_line(result, "No queue named 'Nope'")
    result = cli_desk("queue", "update", "360", "--as", "admin")
    assert_one_error_line(result, "Nothing to change")
    result = cli_desk("queue", "update", "360", "--assign", "auto", "--as", "maya")
    assert_one_error_line(result, "admin")
    assert table_counts(outbox_desk) == before
    with read_session(outbox_desk) as s:
        assert directory.get_queue(s, "360").assign == QueueAssign.pull


def test_a_second_assigner_waits_for_the_first_and_sees_its_count(
    outbox_desk: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL (SQLite's write lock, taken at BEGIN, does the same by design): assigner A
    is held after choosing maya for the oldest ticket; assigner B, started then, must wait
    for A's lock rather than choose on the same stale counts. So A gives the oldest to maya
    and B the next to omar (without the lock, B would take the oldest for maya first)."""
    desk = outbox_desk
    if desk.dialect.name != "postgresql":
        pytest.skip("SQLite serialises write transactions at BEGIN IMMEDIATE")
    from cxdesk.store import assign

    make_auto(desk)
    keys = waiting_tickets(desk, 2)
    present(desk, PresenceState.available, "maya", "omar")
    held, chosen, release = held_in("A", assign.pick_expert)
    monkeypatch.setattr(assign, "pick_expert", held)
    results: dict[str, assign.Assigned | None] = {}

    def run(name: str) -> None:
        results[name] = assign.assign_one(desk)[0]

    first = threading.Thread(target=run, args=("A",), name="A")
    first.start()
    assert chosen.wait(120)
    second = threading.Thread(target=run, args=("B",), name="B")
    second.start()
    until_waiting_on_lock(desk, second, "advisory")  # B waits on A's lock (or ran through)
    release.set()
    first.join(120)
    second.join(120)
    given = {name: (a.key, a.username) for name, a in results.items() if a is not None}
    assert given == {"A": (keys[0], "maya"), "B": (keys[1], "omar")}


def test_a_seed_sets_a_queues_assign_mode(
    cli_desk: Cli,
    outbox_desk: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    seed = tmp_path / "desk.toml"
    seed.write_text('[[queues]]\nname = "360"\nteam = "360"\nassign = "robin"\n')
    refused = cli_desk("seed", str(seed), "--as", "admin")
    assert refused.exit_code == 1 and "assign: must be one of pull, auto" in str(refused)
    seed.write_text('[[queues]]\nname = "360"\nteam = "360"\nassign = "auto"\n')
    assert cli_desk("seed", str(seed), "--as", "admin").exit_code == 0
    result = cli_desk("queue", "list", "--as", "maya")
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ 360 "))
    assert row.split("│")[-2].strip() == "auto"
    with read_session(outbox_desk) as s:
        assert directory.get_queue(s, "360").assign == QueueAssign.auto
