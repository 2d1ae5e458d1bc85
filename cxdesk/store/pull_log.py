"""A pull's log lines on PostgreSQL, written after its claim commits (migration 0024).

On PostgreSQL the claim (``store.pull``) takes the ticket and records on it what its log
needs: ``pull_pending`` (the status before the pull), ``pulled_by``, ``pulled_at``. The
puller then writes the two lines a pull logs (``ticket.assigned_from_queue``, and
``ticket.status_changed`` new -> open), the same lines the ``ticket_pulled`` trigger writes on
SQLite, in one statement that also clears ``pull_pending``: the ticket's row lock makes it
exactly once, whoever runs it. ``pull_next`` returns after it, so from then on every reader
(history, events, undo, the workflows naming the expert) sees what a trigger would have written.

A process that dies between the claim and its log leaves ``pull_pending`` set: the worker's
pass (``engine.worker``, each pass before the backlog dispatch) runs ``log_pending_pulls``,
which writes the missing lines (with the pull's time and expert); the backlog dispatch then
runs their workflows, once, like any event committed without dispatch.

SQLite keeps the trigger (its claim is one statement under the write lock; a second write
transaction would be slower): there nothing is ever pending.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, text

from cxdesk.store.driver_sql import Compiled, run_sql

_LOG = """
WITH done AS (
    UPDATE ticket AS t SET pull_pending = NULL
    FROM (SELECT id, pull_pending FROM ticket
          WHERE {which} AND pull_pending IS NOT NULL {limit} FOR UPDATE {skip}) AS p
    WHERE t.id = p.id
    RETURNING t.id, t.pulled_by, t.pulled_at, t.pulled_from, p.pull_pending AS before
)
INSERT INTO event (kind, actor_id, ticket_id, field_name, from_value, to_value, detail,
                   created_at)
SELECT line.kind, done.pulled_by, done.id, line.field, line.from_value, line.to_value,
       line.detail, done.pulled_at
FROM done CROSS JOIN LATERAL (VALUES
    (1, 'ticket.assigned_from_queue', 'owner', NULL,
     (SELECT username FROM "user" WHERE id = done.pulled_by), done.pulled_from),
    (2, 'ticket.status_changed', 'status', done.before, 'open', NULL)
) AS line (n, kind, field, from_value, to_value, detail)
WHERE line.n = 1 OR done.before = 'new'
ORDER BY done.id, line.n
RETURNING ticket_id
"""
"""The lines of the pending pulls the subquery picks, as the trigger writes them: the owner
line (the expert's name, the queue in ``detail``), then the status line if the claim moved
the ticket new -> open (``pull.claimed``: only ``new`` changes)."""
_LOG_ONE = text(_LOG.format(which="id = :ticket", limit="", skip=""))
_LOG_SOME = text(_LOG.format(which="TRUE", limit="ORDER BY id LIMIT :limit", skip="SKIP LOCKED"))
_ANY_PENDING = text("SELECT 1 FROM ticket WHERE pull_pending IS NOT NULL LIMIT 1")
REPAIR_LIMIT = 500


def log_pull(raw: Any, cursor: Any, dialect: Dialect, ticket_id: int) -> None:
    """Write the log lines of the pull of ``ticket_id`` just claimed, in their own
    transaction (nothing if they are written already)."""
    run_sql(raw, cursor, _log_one(dialect), ticket=ticket_id)


def log_pending_pulls(bind: Engine | Connection, *, limit: int = REPAIR_LIMIT) -> int:
    """Write the log lines of pulls whose process died after the claim (PostgreSQL; nothing
    to do on SQLite); how many pulls were logged. Rows locked by a puller writing them this
    instant are skipped: that puller writes them."""
    if bind.dialect.name != "postgresql":
        return 0
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.begin() as connection:
        if connection.execute(_ANY_PENDING).first() is None:
            return 0
        logged = connection.execute(_LOG_SOME, {"limit": limit}).scalars().all()
    return len(set(logged))


@cache
def _log_one(dialect: Dialect) -> Compiled:
    return Compiled.of(_LOG_ONE, dialect)
