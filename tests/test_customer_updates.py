"""Customer updates on the demo desk, on SQLite and PostgreSQL: the check-in SMS gives the
ticket's position and estimated wait as they stand in the check-in's own transaction, and
"you're nearly next" goes out once per ticket when pulls bring it to position 2
(``engine.near_front``), never twice however the queue moves after."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from cxdesk.store import directory
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import simulated_clock, utcnow
from cxdesk.store.tickets import get_ticket
from cxdesk.store.waiting import UNKNOWN_WORDS, queue_waiting, ticket_wait, wait_in_words
from tests.cli_helpers import Cli
from tests.test_delivery import ok
from tests.test_noshow import check_in, demo, messages, near_front_events, pull_until  # noqa: F401

CHECKED_IN = re.compile(r"You're number (\d+) in line; estimated wait: ([^.]+)\.")
NEAR = "you're nearly next"


def checkin_sms(engine: Engine, key: str) -> tuple[int, str]:
    [sms] = [m for m in messages(engine, key) if "checked in" in m.body]
    found = CHECKED_IN.search(sms.body)
    assert found, sms.body
    assert sms.body.startswith("Hi ") and key in sms.body
    return int(found[1]), found[2]


def waiting_in(engine: Engine, queue: str) -> int:
    with read_session(engine) as s:
        return len(queue_waiting(s, queue))


@pytest.mark.usefixtures("demo")
def test_checkin_sms_gives_the_position_and_the_estimate(cli: Cli, engine: Engine) -> None:
    ahead = waiting_in(engine, "API")
    first = check_in(cli, "Zoe", "API")
    second = check_in(cli, "Ann", "API")
    assert checkin_sms(engine, first) == (ahead + 1, UNKNOWN_WORDS)
    assert checkin_sms(engine, second) == (ahead + 2, UNKNOWN_WORDS)

    # With a handled ticket (the desk asks for one here) and an expert available (presence),
    # the estimate is in words.
    with transaction(engine) as s:
        directory.set_setting(s, "estimate_min_handled", "1")
    ok(cli("user", "status", "available", "--as", "omar"))
    pull_until(cli, first, "API", "omar")
    start = utcnow()
    with simulated_clock(lambda: start + timedelta(minutes=12)):
        ok(cli("ticket", "update", first, "--status", "resolved", "--comment", "Done",
               "--as", "omar"))  # fmt: skip
    moment = start + timedelta(minutes=13)
    with simulated_clock(lambda: moment):
        third = check_in(cli, "Bea", "API")
        with read_session(engine) as s:
            wait = ticket_wait(s, get_ticket(s, third))
    assert wait is not None and wait.wait_minutes is not None
    position, words = checkin_sms(engine, third)
    assert (position, words) == (wait.position, wait_in_words(wait.wait_minutes))
    assert words.startswith(("about", "less than"))


def near_sms(engine: Engine, key: str) -> list[str]:
    return [m.body for m in messages(engine, key) if NEAR in m.body]


@pytest.mark.usefixtures("demo")
def test_youre_next_once_at_position_two_after_pulls_never_twice(cli: Cli, engine: Engine) -> None:
    while waiting_in(engine, "API"):  # the demo's samples: an empty queue to start from
        ok(cli("ticket", "pull", "API", "--as", "marco"))
    keys = [check_in(cli, name, "API") for name in ("Ann", "Bea", "Cem", "Dan")]
    assert [near_sms(engine, k) for k in keys] == [[], [], [], []]  # a check-in moves nobody

    assert ok(cli("ticket", "pull", "API", "--as", "omar")).strip() == keys[0]
    # Bea at 1 (checked in at 2, told at the first move) and Cem at 2; Dan at 3 is not.
    assert [len(near_sms(engine, k)) for k in keys] == [0, 1, 1, 0]
    assert "(number 1 in line)" in near_sms(engine, keys[1])[0]
    assert "(number 2 in line)" in near_sms(engine, keys[2])[0]

    assert ok(cli("ticket", "pull", "API", "--as", "omar")).strip() == keys[1]
    assert [len(near_sms(engine, k)) for k in keys] == [0, 1, 1, 1]  # Dan reached 2
    # Bea goes back to the queue and is pulled again; Cem and Dan move back and forth.
    ok(cli("ticket", "update", keys[1], "--owner", "", "--comment", "Back", "--as", "omar"))
    assert ok(cli("ticket", "pull", "API", "--as", "kenji")).strip() == keys[1]
    assert ok(cli("ticket", "pull", "API", "--as", "kenji")).strip() == keys[2]
    assert [len(near_sms(engine, k)) for k in keys] == [0, 1, 1, 1]
    assert [near_front_events(engine, k) for k in keys] == [0, 1, 1, 1]
    assert "(number 2 in line)" in near_sms(engine, keys[3])[0]
