"""A pull's log lines (``store.pull_log``, migration 0024) on SQLite and PostgreSQL: a process
that dies right after its claim commits loses nothing and sends nothing twice: the worker's
pass writes the missing lines once, and the customer's SMS and email naming the expert go out
once (the real worker, aiosmtpd and Prism's Twilio: the fixtures of tests/test_delivery.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.store import pull as pull_module
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.models import Event, Ticket
from cxdesk.store.pull import pull_next
from cxdesk.store.pull_log import log_pending_pulls
from cxdesk.store.unpull import PULLED_KIND
from tests.cli_helpers import Cli
from tests.test_delivery import (  # noqa: F401  (mail_env, sms_env: fixtures)
    CUSTOMER,
    EXPERT,
    EXPERT_NAME,
    mail_env,
    ok,
    outbox_rows,
    sms_env,
)

QUEUE = "Website/App Feedback"


class Crash(BaseException):
    """The pulling process dies here (nothing of it runs any more)."""


def crash_after_claim(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every pull stops right after its claim committed, before anything else it does; the
    claim as it was (to put back)."""
    claim = pull_module._claim_next

    def claim_then_die(*args: Any) -> Any:
        claim(*args)
        raise Crash

    monkeypatch.setattr(pull_module, "_claim_next", claim_then_die)
    return claim


def pull_lines(engine: Engine, key: str) -> list[tuple[Any, ...]]:
    """The pull's lines of ticket ``key``: (kind, actor, field, from, to, detail)."""
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        events = session.exec(
            select(Event)
            .where(Event.ticket_id == ticket.id)
            .where(col(Event.kind).in_([PULLED_KIND, "ticket.status_changed"]))
            .order_by(col(Event.id))
        ).all()
        return [
            (e.kind, e.actor_id, e.field_name, e.from_value, e.to_value, e.detail, e.created_at)
            for e in events
        ]


@pytest.mark.slow
@pytest.mark.usefixtures("mail_env", "sms_env")
def test_a_pull_that_dies_after_its_claim_is_logged_and_told_once(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(cli("demo"))
    pairs = [arg for name, value in CUSTOMER.items() for arg in ("--answer", f"{name}={value}")]
    [key] = ok(cli("checkin", "--as", "vera", *pairs)).split()
    with read_session(engine) as session:
        expert = get_user(session, EXPERT)
    claim = crash_after_claim(monkeypatch)
    for _ in range(20):  # the demo's sample tickets wait too: oldest first
        with pytest.raises(Crash):
            pull_next(engine, actor=expert, queue_name=QUEUE)
        with read_session(engine) as session:
            ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        if ticket.owner_id == expert.id:
            break
    else:
        pytest.fail(f"{key} never came out of queue {QUEUE}")
    postgres = engine.dialect.name == "postgresql"
    # SQLite: the trigger wrote the lines inside the claim; PostgreSQL: they are pending.
    assert bool(pull_lines(engine, key)) is not postgres
    assert (ticket.pull_pending is not None) is postgres
    monkeypatch.setattr(pull_module, "_claim_next", claim)  # the next process pulls whole

    line = ok(cli("worker", "--once"))  # the repair, then the backlog's workflows, delivery
    assert "failed 0" in line, line
    assert log_pending_pulls(engine) == 0  # nothing left to repair
    ok(cli("worker", "--once"))

    pulled_at = ticket.first_responded_at  # the claim's time (the SLA's first response)
    assert pull_lines(engine, key) == [
        (PULLED_KIND, expert.id, "owner", None, EXPERT, QUEUE, pulled_at),
        ("ticket.status_changed", expert.id, "status", "new", "open", None, pulled_at),
    ]
    told = [r for r in outbox_rows(cli) if r["ticket"] == key and EXPERT_NAME in r["body"]]
    assert sorted((r["channel"], r["status"], r["attempts"]) for r in told) == [
        ("email", "sent", 1),
        ("sms", "sent", 1),
    ]
    history = ok(cli("ticket", "show", key, "--json"))
    assert history.count(PULLED_KIND) == 1


def test_a_pull_returns_with_its_lines_written(engine: Engine, cli: Cli) -> None:
    """Once ``pull_next`` returned, its log is the trigger's: nothing left pending."""
    ok(cli("demo"))
    with read_session(engine) as session:
        expert = get_user(session, EXPERT)
    pulled = pull_next(engine, actor=expert, queue_name=QUEUE)
    with read_session(engine) as session:
        ticket = session.get(Ticket, pulled.id)
        assert ticket is not None and ticket.pull_pending is None
    [owner, *status] = pull_lines(engine, pulled.key)
    assert owner[:6] == (PULLED_KIND, expert.id, "owner", None, EXPERT, QUEUE)
    assert [s[:5] for s in status] in ([], [("ticket.status_changed", expert.id, "status",
                                            "new", "open")])  # fmt: skip
    assert log_pending_pulls(engine) == 0
