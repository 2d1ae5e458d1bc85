"""Event dispatch: run the matching workflows for each new event, exactly once.

Desk operations record events; ``unit_of_work`` runs the workflows for them inside the same
transaction, so the change, its events, the workflows' tickets and their outbox rows commit
together or not at all. A ``workflow_run`` row per (workflow, event) means a workflow never
runs twice for one event; ``dispatch_backlog`` picks up events committed without dispatch
(written by a plain ``transaction``), e.g. from the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, bindparam, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from cxdesk.engine.conditions import evaluate
from cxdesk.engine.context import after_tasks, context_for_event, resolver
from cxdesk.engine.near_front import tell_near_front
from cxdesk.engine.scheduled import schedule_after_event
from cxdesk.engine.tasks import TaskRun, run_task
from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.store import in_hand
from cxdesk.store.assign import Assigned, auto_assign
from cxdesk.store.db import read_session, transaction
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.events import RECORDED_KEY, take_pending_events
from cxdesk.store.models import (
    Event,
    SurveyResponse,
    User,
    WorkflowRun,
    utcnow,
)
from cxdesk.store.prepared import ManyRows, Prepared, array_of
from cxdesk.store.pull import Pulled, pull_next

logger = logging.getLogger(__name__)

# A workflow whose tasks cause events that trigger it again would never stop.
MAX_EVENTS_PER_TRANSACTION = 10_000


def _survey_name(session: Session, event: Event) -> str | None:
    response = (
        in_hand.get(session, SurveyResponse, event.response_id) if event.response_id else None
    )
    return desk_definitions(session).survey_names.get(response.survey_id) if response else None


_INSERT_RUNS = ManyRows(
    WorkflowRun.__table__,  # type: ignore[attr-defined]
    keys=["workflow_id", "event_id", "matched", "created_at"],
)
"""Core, not ORM objects: a check-in writes one run per check-in workflow (nine on the demo
desk), and building each as a model cost more than the INSERT (benchmarks/checkin.py)."""


_EVENTS = Event.__table__  # type: ignore[attr-defined]
_MARK_DISPATCHED = Prepared(
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(dispatched_at=bindparam("done"))
)


def dispatch_event(session: Session, event: Event) -> list[str]:
    """Run every enabled workflow for ``event`` that has not run for it yet; names matched."""
    workflows = desk_definitions(session).workflows.get(event.kind, ())
    if not workflows:
        already: set[int | None] = set()
    elif event.id in session.info.get(RECORDED_KEY, ()):
        already = set()  # written by this transaction: no one else has seen it yet
    else:
        already = set(
            session.exec(
                select(WorkflowRun.workflow_id).where(WorkflowRun.event_id == event.id)
            ).all()
        )
    survey_name = _survey_name(session, event) if event.kind == "survey.response" else None
    matched: list[str] = []
    runs: list[dict[str, Any]] = []
    context = None  # gathered once, and again only after a workflow's tasks changed things
    for workflow in workflows:
        if workflow.id in already:
            continue
        if workflow.survey_name and workflow.survey_name != survey_name:
            continue
        if context is None:
            context = context_for_event(session, event)
        hit = evaluate(workflow.conditions, resolver(context))
        runs.append({"workflow_id": workflow.id, "event_id": event.id, "matched": hit,
                     "created_at": utcnow()})  # fmt: skip
        if hit and workflow.delay_minutes:  # runs later, if its conditions still hold then
            schedule_after_event(session, workflow, event)
        elif hit:
            run = TaskRun(event=event, workflow_id=workflow.id, context=context,
                          ticket_id=event.ticket_id)  # fmt: skip
            for task in workflow.tasks:
                run_task(session, task, run)
            matched.append(workflow.name)
            context = after_tasks(context, workflow.tasks)
    tell_near_front(session, event)  # its queue moved: "you're next" to whom it concerns
    session.flush()  # what the tasks changed through the ORM
    done = utcnow()
    # Written with those of the other events of the pass (``dispatch_pending``), in this
    # transaction: the unique (workflow, event) key refuses a second run of the event
    # (another worker's) and undoes its tasks with it.
    written = session.info.setdefault(_DISPATCHED_KEY, ([], []))
    written[0].extend(runs)
    written[1].append({"event_id": event.id, "done": done})
    set_committed_value(event, "dispatched_at", done)  # as the row will be
    return matched


_RUNS_AND_MARKS: dict[str, Prepared] = {}
"""PostgreSQL's: the workflow runs and the dispatch times in one statement (one round trip
where psycopg's ``executemany`` made two, and a message per row)."""


def _runs_and_marks(
    session: Session, runs: list[dict[str, Any]], done: list[dict[str, Any]]
) -> None:
    dialect = session.get_bind().dialect
    statement = _RUNS_AND_MARKS.get(dialect.name)
    if statement is None:
        events = dialect.identifier_preparer.format_table(_EVENTS)
        marked = array_of(_EVENTS.c.id, dialect, "marked")
        statement = _RUNS_AND_MARKS[dialect.name] = Prepared(text(
            f"WITH runs AS ({_INSERT_RUNS.arrays_sql(dialect)}) "
            f"UPDATE {events} SET dispatched_at = (SELECT marked.done "
            f"FROM unnest({marked}, {array_of(_EVENTS.c.dispatched_at, dialect, 'done')}) "
            f"AS marked(id, done) WHERE marked.id = {events}.id) "
            f"WHERE {events}.id = ANY({marked})"
        ))  # fmt: skip
        # Each event by its key, its time looked up in the arrays: a join of the arrays with
        # the log could be planned as a scan of the whole log.
    processors = _MARK_DISPATCHED._form(dialect).processors
    done_at = processors.get("done") or (lambda value: value)
    statement.execute(session, {
        **_INSERT_RUNS.arrays(dialect, runs),
        "marked": [mark["event_id"] for mark in done],
        "done": [done_at(mark["done"]) for mark in done],
    })  # fmt: skip


_DISPATCHED_KEY = "cxdesk_dispatched"
"""In ``session.info``: the workflow runs and dispatch times of the events dispatched since
they were last written (``dispatch_pending`` writes them, one statement each)."""


def dispatch_pending(session: Session) -> None:
    """Dispatch the events this session recorded, and the events their workflows record;
    then write their workflow runs and dispatch times (also those of the events dispatched
    just before it: ``_dispatch_committed``)."""
    handled = 0
    try:
        while pending := take_pending_events(session):
            for event_id in pending:
                handled += 1
                if handled > MAX_EVENTS_PER_TRANSACTION:
                    raise DeskError(
                        _("Workflows keep triggering each other; stopped (check for a loop)")
                    )
                event = in_hand.get(session, Event, event_id)
                if event is not None and event.dispatched_at is None:
                    dispatch_event(session, event)
        runs, done = session.info.get(_DISPATCHED_KEY, ([], []))
        if done and session.get_bind().dialect.name == "postgresql":
            _runs_and_marks(session, runs, done)
        else:
            _INSERT_RUNS.write(session, runs)
            _MARK_DISPATCHED.execute_many(session, done)
    finally:  # written, or to be undone with what failed: never written later
        session.info.pop(_DISPATCHED_KEY, None)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A desk transaction whose events run their workflows before it commits."""
    with transaction(engine) as session:
        yield session
        dispatch_pending(session)


def dispatch_backlog(engine: Engine, *, limit: int = 500) -> int:
    """Dispatch committed events that no workflow pass has seen yet; how many were handled.

    Every worker runs this every pass, and it nearly always finds nothing: it looks first
    in a read, which on SQLite does not take the write lock, so the look (a walk of the log,
    which has no index on ``dispatched_at``) never holds a pull or a check-in off.
    """
    with read_session(engine) as session:
        undispatched = select(Event.id).where(col(Event.dispatched_at).is_(None)).limit(1)
        if session.exec(undispatched).first() is None:
            return 0
    return _dispatch_committed(engine, limit=limit)


def dispatch_ticket_events(engine: Engine, ticket_id: int) -> int:
    """Dispatch a ticket's committed events not yet dispatched (a pull's, written by the
    database); how many were handled. Whatever this misses, the backlog pass finds."""
    return _dispatch_committed(engine, col(Event.ticket_id) == ticket_id)


def pull_and_dispatch(engine: Engine, *, actor: User, queue_name: str | None) -> Pulled:
    """An expert's pull as the desk runs it (``queue_name`` None: from any of their teams):
    the pull commits, then its events' workflows run (the SMS and email naming the expert).
    A workflow failing does not undo the pull: it is reported as one line and the worker's
    backlog pass tries the events again."""
    pulled = pull_next(engine, actor=actor, queue_name=queue_name)
    try:
        dispatch_ticket_events(engine, pulled.id)
    except DeskError as error:
        raise PulledButNotDispatched(pulled, error) from error
    return pulled


def auto_assign_and_dispatch(engine: Engine) -> list[Assigned]:
    """The auto queues' assignments (``store.assign``), each followed by its workflows, as a
    pull's: the customer hears of an assigned ticket exactly as of a pulled one. A workflow
    failing is logged; the worker's backlog pass runs the events again."""
    assigned = auto_assign(engine)
    for ticket in assigned:
        try:
            dispatch_ticket_events(engine, ticket.id)
        except DeskError as error:
            logger.warning("assigned %s, but its workflows did not run yet: %s", ticket.key, error)
    return assigned


class PulledButNotDispatched(DeskError):
    """The pull committed; its workflows failed (the backlog pass will retry them)."""

    def __init__(self, pulled: Pulled, error: DeskError):
        self.pulled = pulled
        said = _("Pulled {key}, but its workflows did not run yet: {error}")
        super().__init__(said.format(key=pulled.key, error=error))


def _dispatch_committed(engine: Engine, *where: Any, limit: int | None = None) -> int:
    with transaction(engine) as session:
        statement = select(Event).where(col(Event.dispatched_at).is_(None), *where)
        statement = statement.order_by(col(Event.id)).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        events = session.exec(statement).all()
        for event in events:
            dispatch_event(session, event)
        dispatch_pending(session)
        return len(events)
