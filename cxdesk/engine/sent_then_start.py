"""PostgreSQL: a sent message recorded and the next one marked "sending" in one statement.

Before each message's DATA the delivery batch commits the result of the one before and this
one's "sending" mark (``outbox.record_then_start``, ``engine.batch``). Through the session that
is five round trips to the server (BEGIN, the row marked sent, its ``message.sent`` log line,
the mark, COMMIT), and the send waits for them: on a loaded machine each round trip waits for
the server's process to be scheduled. The usual case - one result, a success - is here one
statement of three data-modifying CTEs, prepared once per connection and run on libpq
(``store.pg_prepared``) on the batch's idle connection, so it is its own transaction: one round
trip. It writes what ``record_then_start`` writes (the same columns, the same log line) and
answers the same two questions: was the result recorded (the row still this claim's), and may
the next message go (still this claim's, its lease live, renewed for the send). Everything
else (a failure, several results, SQLite, psycopg told to prepare nothing) takes the session's
way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Dialect,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    update,
)

from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.outbox import _MARK_SENT, LEASE, Claim, held_by
from cxdesk.store.db import driver_error
from cxdesk.store.driver_sql import Compiled
from cxdesk.store.models import Event, OutboxMessage, utcnow

_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_EVENTS = Event.__table__  # type: ignore[attr-defined]


def _statement() -> Any:
    token: BindParameter[str] = bindparam("token")
    sent = _MARK_SENT.cte("sent")  # the session's own statement, as a CTE
    logged = (
        insert(_EVENTS)
        .from_select(
            ["kind", "actor_id", "ticket_id", "response_id", "field_name", "from_value",
             "to_value", "detail", "created_at", "dispatched_at"],
            select(
                literal("message.sent", _EVENTS.c.kind.type), null(), sent.c.ticket_id, null(),
                sent.c.channel, null(), sent.c.to_addr,
                cast(bindparam("detail"), _EVENTS.c.detail.type),
                cast(bindparam("logged_at"), _EVENTS.c.created_at.type),
                cast(bindparam("logged_at"), _EVENTS.c.dispatched_at.type),
            ),
        )
        .returning(_EVENTS.c.id)
        .cte("logged")
    )  # fmt: skip
    sending = (
        update(_OUTBOX)
        .where(
            _OUTBOX.c.id == bindparam("sending_id"),
            held_by(token),
            _OUTBOX.c.claimed_until > bindparam("sending_at_value"),
        )
        .values(
            sending_at=bindparam("sending_at_value"),
            claimed_until=case(
                (_OUTBOX.c.claimed_until > bindparam("until"), _OUTBOX.c.claimed_until),
                else_=bindparam("until"),
            ),
        )
        .returning(_OUTBOX.c.id)
        .cte("sending")
    )
    return select(
        select(func.count()).select_from(logged).scalar_subquery(),
        select(func.count()).select_from(sending).scalar_subquery(),
    )


@cache
def _prepared(dialect: Dialect) -> tuple[Any, Compiled]:
    from cxdesk.store.pg_prepared import Prepared

    compiled = Compiled.of(_statement(), dialect)
    return Prepared(compiled), compiled


def usable(connection: Connection, results: Sequence[DeliveryResult], sending: int | None) -> bool:
    """Whether ``record_sent_then_start`` can take this commit (else ``record_then_start``):
    one success, PostgreSQL, statements prepared, and the connection idle on the server too
    (the statement must be its own transaction, committed before the send)."""
    if not (
        sending is not None
        and len(results) == 1
        and results[0].ok
        and connection.dialect.name == "postgresql"
        and not connection.in_transaction()
    ):
        return False
    from cxdesk.store.pg_prepared import IDLE

    driver = connection.connection.driver_connection
    return (
        getattr(driver, "prepare_threshold", None) is not None
        and driver.pgconn.transaction_status == IDLE  # type: ignore[union-attr]
    )


def record_sent_then_start(
    connection: Connection, claim: Claim, result: DeliveryResult, sending: int
) -> tuple[list[bool], bool]:
    """``record_then_start(connection, claim, [result], sending)`` for one success, in one
    statement: (recorded, may send)."""
    prepared, compiled = _prepared(connection.dialect)
    raw = connection.connection
    detail = f"outbox #{result.outbox_id} {result.provider_id or ''}"
    if result.found:
        detail += " (found sent by an earlier attempt: not sent again)"
    now = utcnow()
    try:
        [(recorded, started)] = prepared.run(
            raw, token=claim.token, outbox_id=result.outbox_id, sent_at_value=now,
            provider_id_value=result.provider_id, detail=detail.strip(), logged_at=now,
            sending_id=sending, sending_at_value=now, until=now + LEASE,
        )  # fmt: skip
    except compiled.operational_error as exc:
        raise driver_error(exc) from exc
    return [recorded == 1], started == 1
