"""Running time-based workflows when they fall due, each occurrence once (the worker's pass).

Every worker calls ``run_due_workflows`` every pass; several may at once, on several
machines. Each occurrence runs in its own desk transaction (``dispatch.unit_of_work``: the
events its tasks raise run their workflows too) that also marks it run, so its tasks and its
mark commit together or not at all:

- a scheduled workflow's occurrence is claimed by inserting its ``workflow_occurrence`` row
  (key: its instant, UTC) with ``ON CONFLICT DO NOTHING``: the unique (workflow, key) lets
  one insert through; a worker that gets nothing back leaves it (PostgreSQL makes the second
  insert wait for the first's transaction; SQLite's write lock orders them);
- a delayed workflow's occurrence (inserted when its event was dispatched) is claimed by
  ``UPDATE ... SET ran_at WHERE ran_at IS NULL``: one update finds it unclaimed.

A worker that was down runs only the latest missed instant of each schedule when it comes
back (``scheduled.due_instant``), and every overdue delayed occurrence (each is its own
ticket's). Their messages count their validity window from the due time (``TaskRun``), so a
digest caught up days late is set aside as stale rather than sent as news.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, func, select

from cxdesk.engine.conditions import evaluate
from cxdesk.engine.context import context_for_event, resolver
from cxdesk.engine.desk_figures import DeskFigures
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.piped import PipeContext
from cxdesk.engine.schedule import parse_schedule
from cxdesk.engine.scheduled import SCHEDULE_RAN, due_instant
from cxdesk.engine.tasks import TaskRun, run_task
from cxdesk.errors import DeskError
from cxdesk.store.db import is_stale_write, is_unreachable, read_session, transaction
from cxdesk.store.directory import desk_zone
from cxdesk.store.events import record_event
from cxdesk.store.models import Event, Workflow, WorkflowOccurrence, simulated_clock, utcnow
from cxdesk.store.upsert import dialect_insert

logger = logging.getLogger(__name__)

BATCH = 100
"""Delayed occurrences looked at per pass; the rest wait for the next pass."""
_OCCURRENCES = WorkflowOccurrence.__table__  # type: ignore[attr-defined]


def run_due_workflows(engine: Engine, *, now: datetime | None = None) -> int:
    """Run every time-based workflow occurrence due at ``now`` (default: the clock) that no
    worker ran yet; how many this worker ran (matched or not).

    A given ``now`` (a test's controlled time) is also the clock of what the runs write
    (``simulated_clock``): a digest run at 18:00 queues its email due at 18:00."""
    moment = now or utcnow()
    ran = 0
    with simulated_clock(lambda: moment) if now is not None else nullcontext():
        for workflow_id, instant in _due_schedules(engine, moment):
            try:
                ran += _run_scheduled(engine, workflow_id, instant, moment)
            except DeskError as error:
                if not _passing(error):
                    ran += _failed(engine, workflow_id, instant, moment, error)
        for occurrence_id in _due_delayed(engine, moment):
            try:
                ran += _run_delayed(engine, occurrence_id, moment)
            except DeskError as error:
                if not _passing(error):
                    ran += _failed(engine, None, occurrence_id, moment, error)
    return ran


def _passing(error: DeskError) -> bool:
    """Trouble that passes, so the run is not given up: the database unreachable or busy
    fails the worker's pass (said once, tried again: ``engine.worker``); a ticket written by
    someone else meanwhile leaves the run due for the next pass."""
    if is_unreachable(error):
        raise error
    return is_stale_write(error)


def _failed(
    engine: Engine, workflow_id: int | None, due: datetime | int, now: datetime, error: Exception
) -> int:
    """A run whose tasks failed on the desk's data (a team since deleted...): its changes are
    undone; it is marked run, with a log line saying why, rather than failing every pass.
    ``workflow_id`` None: ``due`` is a delayed occurrence's id, else a scheduled instant."""
    with transaction(engine) as session:
        if isinstance(due, datetime):
            if workflow_id is None or not _claim_instant(session, workflow_id, due, now):
                return 0
            ticket_id = None
        else:
            claim = update(_OCCURRENCES).where(
                _OCCURRENCES.c.id == due, _OCCURRENCES.c.ran_at.is_(None)
            )
            if session.connection().execute(claim.values(ran_at=now)).rowcount != 1:
                return 0
            occurrence = session.get(WorkflowOccurrence, due)
            workflow_id = occurrence.workflow_id if occurrence else None
            ticket_id = occurrence.ticket_id if occurrence else None
        workflow = session.get(Workflow, workflow_id) if workflow_id else None
        name = workflow.name if workflow else str(workflow_id)
        logger.warning("time-based workflow %s failed, not run: %s", name, error)
        record_event(session, kind=SCHEDULE_RAN, actor=None, ticket_id=ticket_id,
                     field_name="workflow", to_value=name, detail=f"failed, not run: {error}",
                     triggers_workflows=False)  # fmt: skip
        return 1


def _due_schedules(engine: Engine, now: datetime) -> list[tuple[int, datetime]]:
    """(workflow id, instant) of each enabled schedule owing a run: a read of three columns,
    which finds nothing nearly every pass and takes no write lock."""
    with read_session(engine) as session:
        schedules = session.exec(
            select(Workflow.id, Workflow.schedule, Workflow.schedule_since).where(
                col(Workflow.schedule).is_not(None), col(Workflow.enabled)
            )
        ).all()
        if not schedules:
            return []
        zone = desk_zone(session)
        last: dict[int | None, datetime | None] = dict(
            session.exec(
                select(WorkflowOccurrence.workflow_id, func.max(WorkflowOccurrence.due_at))
                .where(col(WorkflowOccurrence.workflow_id).in_([s[0] for s in schedules]))
                .group_by(col(WorkflowOccurrence.workflow_id))
            ).all()
        )
    due = []
    for workflow_id, schedule, since in schedules:
        instant = due_instant(schedule or "", since, last.get(workflow_id), now, zone)
        if instant is not None and workflow_id is not None:
            due.append((workflow_id, instant))
    return due


def _claim_instant(session: Session, workflow_id: int, instant: datetime, now: datetime) -> bool:
    """Insert the occurrence of ``instant``, run; False when another worker's insert won."""
    dialect = session.get_bind().dialect.name
    insert = dialect_insert(dialect)
    statement = (
        insert(_OCCURRENCES)
        .values(
            workflow_id=workflow_id,
            key=instant.isoformat(),
            due_at=instant,
            ran_at=now,
            matched=False,
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["workflow_id", "key"])
        .returning(_OCCURRENCES.c.id)
    )
    return session.connection().execute(statement).first() is not None


def _previous_instant(session: Session, workflow: Workflow, instant: datetime) -> datetime:
    """Where this run's period starts: the workflow's last run before ``instant``, else the
    schedule's instant before it."""
    last = session.exec(
        select(func.max(WorkflowOccurrence.due_at)).where(
            WorkflowOccurrence.workflow_id == workflow.id, WorkflowOccurrence.due_at < instant
        )
    ).one()
    if last is not None:
        return last
    earlier = parse_schedule(workflow.schedule or "").latest(
        instant - timedelta(microseconds=1), desk_zone(session)
    )
    return earlier or instant - timedelta(days=1)


def _run_scheduled(engine: Engine, workflow_id: int, instant: datetime, now: datetime) -> int:
    with unit_of_work(engine) as session:
        workflow = session.get(Workflow, workflow_id)
        if workflow is None or workflow.schedule is None or not workflow.enabled:
            return 0
        if not _claim_instant(session, workflow_id, instant, now):
            return 0
        zone = desk_zone(session)
        since = _previous_instant(session, workflow, instant)
        event_id = record_event(
            session,
            kind=SCHEDULE_RAN,
            actor=None,
            field_name="workflow",
            to_value=workflow.name,
            detail=f"{workflow.schedule} at {instant.astimezone(zone):%Y-%m-%d %H:%M} ({zone})",
            triggers_workflows=False,
        )
        event = session.get(Event, event_id)
        assert event is not None
        context = PipeContext(desk=DeskFigures(session, since=since, until=instant, zone=zone))
        _run_tasks(session, workflow, event, context, ticket_id=None, written_at=instant,
                   key=instant.isoformat())  # fmt: skip
        return 1


def _due_delayed(engine: Engine, now: datetime) -> list[int]:
    with read_session(engine) as session:
        statement = (
            select(WorkflowOccurrence.id)
            .where(col(WorkflowOccurrence.ran_at).is_(None), WorkflowOccurrence.due_at <= now)
            .order_by(col(WorkflowOccurrence.due_at))
            .limit(BATCH)
        )
        return [i for i in session.exec(statement).all() if i is not None]


def _superseded(session: Session, event: Event) -> bool:
    """A later event of the same kind came on the ticket: its own occurrence counts ("24
    hours after the *last* change to Waiting on customer"), not this one."""
    if event.ticket_id is None:
        return False
    later = select(Event.id).where(
        Event.ticket_id == event.ticket_id, Event.kind == event.kind, col(Event.id) > event.id
    )
    return session.exec(later.limit(1)).first() is not None


def _run_delayed(engine: Engine, occurrence_id: int, now: datetime) -> int:
    with unit_of_work(engine) as session:
        claim = (
            update(_OCCURRENCES)
            .where(_OCCURRENCES.c.id == occurrence_id, _OCCURRENCES.c.ran_at.is_(None))
            .values(ran_at=now)
        )
        if session.connection().execute(claim).rowcount != 1:
            return 0  # another worker ran it
        occurrence = session.get(WorkflowOccurrence, occurrence_id)
        assert occurrence is not None
        workflow = session.get(Workflow, occurrence.workflow_id)
        event = session.get(Event, occurrence.event_id) if occurrence.event_id else None
        if workflow is None or event is None or not workflow.enabled or _superseded(session, event):
            return 1  # marked run, nothing done: off since, or a later event counts
        context = context_for_event(session, event)  # the ticket as it is now: "if still so"
        _run_tasks(session, workflow, event, context, ticket_id=event.ticket_id,
                   written_at=occurrence.due_at, key=occurrence.key)  # fmt: skip
        return 1


def _run_tasks(
    session: Session,
    workflow: Workflow,
    event: Event,
    context: PipeContext,
    *,
    ticket_id: int | None,
    written_at: datetime,
    key: str,
) -> None:
    """Run the workflow's tasks if its conditions hold now; record whether they did."""
    matched = evaluate(workflow.conditions, resolver(context))
    if matched:
        run = TaskRun(event=event, workflow_id=workflow.id, context=context,
                      ticket_id=ticket_id, written_at=written_at)  # fmt: skip
        for task in workflow.tasks:
            run_task(session, task, run)
    mark: Any = (
        update(_OCCURRENCES)
        .where(_OCCURRENCES.c.workflow_id == workflow.id, _OCCURRENCES.c.key == key)
        .values(matched=matched)
    )
    session.connection().execute(mark)
