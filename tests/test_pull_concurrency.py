"""Pulling the next ticket: atomic under many processes at once, in queue order, with warnings.

The concurrency test starts one OS process per expert (this file run as a script: see
``_worker_main`` at the bottom). Each builds its own engine from the database URL, signals
"ready", blocks until the test writes "go AT" to every process (AT: an instant just ahead, so
all start together however slowly a busy machine schedules them), tries its first pull, says
"first" and waits for "on" (so no worker drains the queue before the others have pulled once:
on a busy machine the first one scheduled could), then pulls until ``QueueEmpty`` and prints the
ids it got as one JSON line. Runs on SQLite and PostgreSQL (the
``db_url`` / ``engine`` fixtures of conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.errors import PermissionDenied, QueueEmpty
from cxdesk.store.caps import CapReached
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import add_queue, add_team, add_user, ensure_builtin_statuses, get_user
from cxdesk.store.models import Event, Ticket, User
from cxdesk.store.pull import pull_next
from cxdesk.store.tickets import TicketDraft, create_ticket

TEAM = "360"
EXPERTS = 8
TICKETS = 300
READY_TIMEOUT_S = 60
START_AHEAD_S = 0.5
"""How far ahead of the start signal the workers start together."""
PULL_TIMEOUT_S = 120
REPO_ROOT = Path(__file__).resolve().parents[1]
ANY = "--any"
"""What a worker is given for "pull from any of my teams"."""


def _add_expert(session: Session, username: str, teams: list[str]) -> User:
    return add_user(
        session,
        actor=None,
        username=username,
        name=username.title(),
        email=f"{username}@example.com",
        password="not-a-secret",
        role="expert",
        teams=teams,
    )


def _seed_team(engine: Engine, *, ordering: str = "oldest") -> None:
    """Built-in statuses, team and queue "360" (with this ordering), team "Stats iQ"."""
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
        add_team(session, actor=None, name=TEAM)
        add_team(session, actor=None, name="Stats iQ")
        add_queue(session, actor=None, name=TEAM, team=TEAM, ordering=ordering)


# -- many processes at the same instant --------------------------------------------------------


def _start_workers(
    db_url: str, usernames: list[str], queue: str
) -> dict[str, subprocess.Popen[str]]:
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)))
    return {
        username: subprocess.Popen(
            [sys.executable, __file__, db_url, username, queue],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for username in usernames
    }


def _fail(procs: dict[str, subprocess.Popen[str]], username: str, what: str) -> NoReturn:
    """Stop every worker, then fail the test with this one's stderr."""
    for proc in procs.values():
        proc.kill()
    _out, err = procs[username].communicate()
    pytest.fail(f"worker {username} {what} (exit {procs[username].returncode}):\n{err}")


def _wait_for_each(
    procs: dict[str, subprocess.Popen[str]], pipes: dict[str, Any], word: str, what: str
) -> None:
    """Read ``word`` from every worker's output (or fail the test, naming the worker)."""
    with ThreadPoolExecutor(len(procs)) as pool:
        said = {name: pool.submit(out.readline) for name, (_in, out) in pipes.items() if out}
        for name, line in said.items():
            try:
                if line.result(timeout=READY_TIMEOUT_S).strip() != word:
                    _fail(procs, name, f"stopped before it said {word!r}")
            except TimeoutError:
                _fail(procs, name, f"{what} after {READY_TIMEOUT_S} s")


def run_workers(db_url: str, usernames: list[str], queue: str = TEAM) -> list[dict[str, Any]]:
    """Start the workers (one per name: a name may come twice, one expert's two terminals),
    release them together, return each one's report (or fail the test). ``queue`` is the
    queue they pull from, or ``ANY`` for ``pull_any``."""
    procs = _start_workers(db_url, usernames, queue)
    pipes = {name: (proc.stdin, proc.stdout) for name, proc in procs.items()}
    try:
        _wait_for_each(procs, pipes, "ready", "was not ready")
        # The start signal: every worker is blocked reading it. It names an instant a little
        # ahead, so the first worker told does not pull everything before the last is told
        # (a busy machine took that long to schedule the others).
        start_at = time.time() + START_AHEAD_S
        for stdin, _out in pipes.values():
            assert stdin is not None
            stdin.write(f"go {start_at}\n")
            stdin.flush()
        _wait_for_each(procs, pipes, "first", "did not try its first pull")
        for stdin, _out in pipes.values():
            assert stdin is not None
            stdin.write("on\n")
            stdin.flush()
        reports = []
        for name, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=PULL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _fail(procs, name, f"was still pulling after {PULL_TIMEOUT_S} s")
            if proc.returncode != 0:
                pytest.fail(f"worker {name} crashed (exit {proc.returncode}):\n{err}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_concurrent_pulls_give_every_ticket_to_exactly_one_expert(
    db_url: str, engine: Engine
) -> None:
    _seed_team(engine)
    usernames = [f"expert{n}" for n in range(EXPERTS)]
    with transaction(engine) as session:
        for username in usernames:
            _add_expert(session, username, [TEAM])
        ticket_ids: set[int] = set()
        for n in range(TICKETS):
            ticket = create_ticket(session, actor=None, draft=TicketDraft(f"Ticket {n}", TEAM))
            assert ticket.id is not None
            ticket_ids.add(ticket.id)
    assert len(ticket_ids) == TICKETS

    reports = run_workers(db_url, usernames)

    claims = Counter(ticket_id for report in reports for ticket_id in report["claimed"])
    doubles = {ticket_id: n for ticket_id, n in claims.items() if n > 1}
    assert not doubles, f"tickets given to more than one expert: {doubles}"
    missing, unknown = sorted(ticket_ids - set(claims)), sorted(set(claims) - ticket_ids)
    assert not missing and not unknown, f"never pulled: {missing[:20]}, unknown: {unknown[:20]}"
    spread = {report["username"]: len(report["claimed"]) for report in reports}
    assert sum(1 for n in spread.values() if n) >= 2, f"no concurrency happened: {spread}"

    with read_session(engine) as session:
        owners = dict(session.exec(select(Ticket.id, Ticket.owner_id)).all())
        statuses = Counter(session.exec(select(Ticket.status)).all())
        assignments = session.exec(
            select(Event.ticket_id, Event.actor_id).where(
                Event.kind == "ticket.assigned_from_queue"
            )
        ).all()
    wrong_owner = {
        ticket_id: (owners.get(ticket_id), report["user_id"])
        for report in reports
        for ticket_id in report["claimed"]
        if owners.get(ticket_id) != report["user_id"]
    }
    assert not wrong_owner, f"ticket -> (owner in db, expert who got it): {wrong_owner}"
    assert statuses == {"open": TICKETS}
    # One assignment event per ticket, by its owner: no event survived a rolled-back claim.
    assert sorted(assignments) == sorted(owners.items())


# -- queue order and warnings ------------------------------------------------------------------


def test_pull_follows_priority_order_and_warns(engine: Engine) -> None:
    _seed_team(engine, ordering="priority")
    with transaction(engine) as session:
        expert = _add_expert(session, "expert", [TEAM])
        outsider = _add_expert(session, "outsider", ["Stats iQ"])
        # Oldest of all, and critical, but never pullable from queue 360.
        for draft in (
            TicketDraft(title="other team", team="Stats iQ", priority="critical"),
            TicketDraft(title="resolved", team=TEAM, priority="critical", status="resolved"),
            TicketDraft(title="owned", team=TEAM, priority="critical", owner="expert"),
        ):
            create_ticket(session, actor=None, draft=draft)
        for title in ("low 1", "medium 1", "critical 1", "high 1", "low 2", "critical 2"):
            priority = title.split()[0]
            create_ticket(session, actor=None, draft=TicketDraft(title, TEAM, priority=priority))
        create_ticket(session, actor=None, draft=TicketDraft("medium 2", TEAM, status="open"))
        create_ticket(session, actor=None, draft=TicketDraft("high 2", TEAM, priority="high"))

    with pytest.raises(PermissionDenied, match=r"^You are not on team 360$"):
        pull_next(engine, actor=outsider, queue_name=TEAM)

    pulled = []
    for _ in range(8):
        ticket_id = pull_next(engine, actor=expert, queue_name=TEAM).id
        with read_session(engine) as session:
            ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and (ticket.owner_id, ticket.status) == (expert.id, "open")
        pulled.append(ticket.title)
    assert pulled == [
        "critical 1",
        "critical 2",
        "high 1",
        "high 2",
        "medium 1",
        "medium 2",
        "low 1",
        "low 2",
    ]

    with pytest.raises(QueueEmpty) as empty:
        pull_next(engine, actor=expert, queue_name=TEAM)
    assert str(empty.value) == "No tickets waiting in 360"

    with read_session(engine) as session:
        untouched = session.exec(
            select(Ticket.title, Ticket.owner_id).where(
                col(Ticket.title).in_(["other team", "resolved", "owned"])
            )
        ).all()
    assert sorted(untouched) == [("other team", None), ("owned", expert.id), ("resolved", None)]


# -- the worker process ------------------------------------------------------------------------


def _worker_main(db_url: str, terminal: str, queue: str) -> None:
    """Pull from ``queue`` (``ANY``: any of my teams) as ``terminal``'s user until it is empty
    or the user's cap is reached; print the ids as one JSON line."""
    username = terminal.split("#")[0]
    engine = make_engine(db_url)
    with read_session(engine) as session:  # also opens the pooled connection before the start
        expert = get_user(session, username)
    print("ready", flush=True)
    signal = sys.stdin.readline().split()
    if signal[:1] != ["go"] or len(signal) != 2:
        raise SystemExit("no start signal")
    time.sleep(max(0.0, float(signal[1]) - time.time()))  # all start at the same instant
    claimed: list[int] = []
    first = True
    while True:
        try:
            claimed.append(
                pull_next(engine, actor=expert, queue_name=None if queue == ANY else queue).id
            )
        except (QueueEmpty, CapReached):
            break
        finally:
            if first:  # every worker has tried once before any goes on
                first = False
                print("first", flush=True)
                if sys.stdin.readline().strip() != "on":
                    raise SystemExit("no second signal")
    engine.dispose()
    report = {"username": terminal, "user_id": expert.id, "claimed": claimed}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    _worker_main(*sys.argv[1:])
