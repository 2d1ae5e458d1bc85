"""Recording a sent email and marking the next one "sending": PostgreSQL's one-statement way
(``engine.sent_then_start``, taken by ``outbox.record_then_start`` for one success on the
batch's connection) writes what the session's way writes, and says the same when the row was
taken over or the next one's lease ran out. On SQLite every commit takes the session's way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine import outbox as outbox_module
from cxdesk.engine import sent_then_start
from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.outbox import claim_due, record_then_start
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import Event, OutboxMessage, utcnow
from tests.test_delivery import outbox, queue_emails

_SAME = ("kind", "actor_id", "ticket_id", "response_id", "field_name", "from_value")


def _sent(outbox_id: int) -> DeliveryResult:
    return DeliveryResult(outbox_id, True, f"<m{outbox_id}@example.com>", None, False)


def _sent_events(engine: Engine) -> dict[str, Event]:
    """The ``message.sent`` log lines, by the outbox row their detail names."""
    with read_session(engine) as session:
        rows = session.exec(select(Event).where(col(Event.kind) == "message.sent")).all()
    return {(row.detail or "").split()[1]: row for row in rows}


def test_the_one_statement_way_writes_and_answers_as_the_sessions_way(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = sent_then_start.record_sent_then_start

    def counted(*args: Any) -> Any:
        calls.append(args[3])
        return real(*args)

    monkeypatch.setattr(sent_then_start, "record_sent_then_start", counted)
    _key, ids = queue_emails(engine, 5)
    claim = claim_due(engine, channel="email")
    with engine.connect() as connection:
        assert record_then_start(connection, claim, [], ids[0]) == ([], True)
        assert record_then_start(connection, claim, [_sent(ids[0])], ids[1]) == ([True], True)
        # the session's way (an engine, not the batch's connection), for comparison
        assert record_then_start(engine, claim, [_sent(ids[1])], ids[2]) == ([True], True)
        with transaction(engine) as session:  # row 2 taken over, row 4's lease run out
            table = OutboxMessage.__table__  # type: ignore[attr-defined]
            session.execute(update(table).where(table.c.id == ids[2]).values(claim_token="x"))
            session.execute(
                update(table)
                .where(table.c.id == ids[4])
                .values(claimed_until=utcnow() - timedelta(seconds=1))
            )
        assert record_then_start(connection, claim, [_sent(ids[2])], ids[3]) == ([False], True)
        assert record_then_start(connection, claim, [_sent(ids[3])], ids[4]) == ([True], False)
    postgres = engine.dialect.name == "postgresql"
    assert calls == ([ids[1], ids[3], ids[4]] if postgres else [])

    rows = {row.id: row for row in outbox(engine, *ids)}
    for number in (0, 1, 3):  # 0 and 3 one statement (PostgreSQL), 1 the session's
        row = rows[ids[number]]
        assert (row.status, row.provider_id, row.last_error, row.claimed_until) == (
            "sent", f"<m{ids[number]}@example.com>", None, None
        )  # fmt: skip
        assert row.sending_at is not None and row.sent_at is not None
    assert rows[ids[2]].status == "pending" and rows[ids[2]].claim_token == "x"
    assert rows[ids[4]].status == "pending" and rows[ids[4]].sending_at is None
    events = _sent_events(engine)
    assert sorted(events) == sorted(f"#{ids[n]}" for n in (0, 1, 3))
    by_session = events[f"#{ids[1]}"]
    for number in (0, 1, 3):
        event = events[f"#{ids[number]}"]
        assert {name: getattr(event, name) for name in _SAME} == {
            name: getattr(by_session, name) for name in _SAME
        }
        assert event.to_value == rows[ids[number]].to_addr
        assert event.detail == f"outbox #{ids[number]} <m{ids[number]}@example.com>"
        assert event.dispatched_at is not None and event.created_at is not None
    assert outbox_module.record_then_start is record_then_start
