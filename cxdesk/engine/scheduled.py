"""Time-based workflows as data: what a schedule or a delay may hold, when one runs next,
and the occurrence a delayed workflow's event schedules.

Two kinds besides the event workflows:

- **scheduled**: ``Workflow.schedule`` (``engine.schedule``: cron's five fields or a friendly
  form, in the desk's ``time_zone``); ``Workflow.event`` is then ``SCHEDULE_EVENT``, which no
  event is. It has no ticket: its tasks send messages (``send_email``, ``send_sms``) or
  create tickets, and pipe desk-wide figures (``${desk://...}``, ``engine.desk_figures``).
- **delayed**: an event workflow with ``delay_minutes``. When the event is dispatched and its
  conditions hold, an occurrence is scheduled (``schedule_after_event``); when it falls due
  the conditions are read again on the ticket as it is then (``engine.occurrences``).

At most ``MAX_SCHEDULED`` scheduled workflows are enabled at once: every worker pass works out
each one's latest run (see README, "Scheduled workflows").
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from cxdesk.engine.schedule import parse_schedule, schedule_problem
from cxdesk.errors import ValidationFailed
from cxdesk.store.definitions import WorkflowDefinition
from cxdesk.store.directory import desk_zone
from cxdesk.store.models import Event, Workflow, WorkflowOccurrence, utcnow

SCHEDULE_EVENT = "schedule"
"""``Workflow.event`` of a scheduled workflow (no event has that kind)."""
SCHEDULE_RAN = "workflow.scheduled"
"""The log line of one scheduled run (no ticket): what its outbox rows name as their cause."""
MAX_SCHEDULED = 50
MAX_DELAY_MINUTES = 366 * 24 * 60
MAX_SCHEDULE_LENGTH = 100  # the column's
TICKETLESS_TASKS = ("send_email", "send_sms", "create_ticket")
_NAMESPACE = re.compile(r"\$\{([a-z]+)://")


def _namespaces(value: Any) -> set[str]:
    """The placeholder namespaces (``tck``, ``q``, ``e``, ``desk``) ``value`` pipes from."""
    return set(_NAMESPACE.findall(json.dumps(value, ensure_ascii=False)))


def _condition_fields(condition: Any) -> set[str]:
    if not isinstance(condition, dict):
        return set()
    if "all" in condition or "any" in condition:
        parts = condition.get("all", condition.get("any"))
        return set().union(*(_condition_fields(p) for p in parts)) if isinstance(parts, list) \
            else set()  # fmt: skip
    field = condition.get("field")
    return {field.split("://")[0]} if isinstance(field, str) else set()


def time_problems(
    session: Session,
    *,
    event: str,
    schedule: str | None,
    survey_name: str | None,
    delay_minutes: Any,
    conditions: Any,
    tasks: Any,
) -> list[str]:
    """What is wrong with a workflow's schedule or delay, and with piping that does not fit
    its kind (a scheduled one has no ticket; only a scheduled one has desk figures)."""
    problems: list[str] = []
    used = _namespaces(tasks) | _condition_fields(conditions)
    if schedule is None:
        if "desk" in used:
            problems.append("${desk://...} figures are for scheduled workflows only")
        if delay_minutes is not None and (
            isinstance(delay_minutes, bool)
            or not isinstance(delay_minutes, int)
            or not 1 <= delay_minutes <= MAX_DELAY_MINUTES
        ):
            problems.append(f"delay_minutes must be a whole number of minutes from 1 to "
                            f"{MAX_DELAY_MINUTES} (366 days)")  # fmt: skip
        return problems
    if event != SCHEDULE_EVENT:
        problems.append("a workflow has an event or a schedule, not both")
    if delay_minutes is not None:
        problems.append("delay_minutes is for event workflows; a schedule says when")
    if survey_name:
        problems.append("a scheduled workflow has no survey response: drop survey")
    if not isinstance(schedule, str) or len(schedule) > MAX_SCHEDULE_LENGTH:
        problem: str | None = f"must be text of at most {MAX_SCHEDULE_LENGTH} characters"
    else:
        problem = schedule_problem(schedule, desk_zone(session), utcnow())
    if problem:
        problems.append(f"schedule: {problem}")
    for namespace in sorted(used & {"tck", "q"}):
        problems.append(f"a scheduled workflow has no ticket or answers: ${{{namespace}://...}} "
                        "cannot be used (${desk://...} figures can)")  # fmt: skip
    for index, task in enumerate(tasks if isinstance(tasks, list) else [], start=1):
        kind = task.get("type") if isinstance(task, dict) else None
        if kind not in TICKETLESS_TASKS and kind is not None:
            problems.append(f"task {index}: {kind} needs a ticket, and a scheduled workflow "
                            f"has none (use {', '.join(TICKETLESS_TASKS)})")  # fmt: skip
    return problems


def refuse_over_cap(session: Session, workflow: Workflow) -> None:
    """Refuse enabling ``workflow`` (scheduled) when ``MAX_SCHEDULED`` others already are."""
    others = (
        select(func.count())
        .select_from(Workflow)
        .where(
            col(Workflow.schedule).is_not(None),
            col(Workflow.enabled),
            Workflow.name != workflow.name,
        )
    )
    if session.exec(others).one() >= MAX_SCHEDULED:
        raise ValidationFailed({f"workflow {workflow.name}": (
            f"the desk already has {MAX_SCHEDULED} enabled scheduled workflows, the most it "
            "runs: disable one first")})  # fmt: skip


def next_run(session: Session, workflow: Workflow, now: datetime | None = None) -> datetime | None:
    """When a time-based workflow runs next (aware UTC): a schedule's next instant (a run it
    missed and has not made up for yet counts as now: the latest one is caught up), a delayed
    workflow's earliest pending occurrence. None: an event workflow, off, or nothing pending."""
    if not workflow.enabled or (workflow.schedule is None and not workflow.delay_minutes):
        return None
    if workflow.schedule is None:
        pending = select(func.min(WorkflowOccurrence.due_at)).where(
            WorkflowOccurrence.workflow_id == workflow.id,
            col(WorkflowOccurrence.ran_at).is_(None),
        )
        return session.exec(pending).one()
    now = now or utcnow()
    zone = desk_zone(session)
    last = session.exec(
        select(func.max(WorkflowOccurrence.due_at)).where(
            WorkflowOccurrence.workflow_id == workflow.id
        )
    ).one()
    if due_instant(workflow.schedule, workflow.schedule_since, last, now, zone) is not None:
        return now
    return parse_schedule(workflow.schedule).next_after(now, zone)


def due_instant(
    schedule: str, since: datetime | None, last: datetime | None, now: datetime, zone: ZoneInfo
) -> datetime | None:
    """The run a scheduled workflow owes at ``now``: its latest instant at or before ``now``,
    when that is after its ``last`` run and not before its schedule was set (``since``); else
    None. Only the
    latest missed run is caught up: a worker back after three days runs one digest.

    Every pass of every worker asks, so the first instant after the last run (or the setting
    of the schedule) is remembered per process: an idle pass computes nothing."""
    floors = [last, since and since - timedelta.resolution]
    after = max((f for f in floors if f is not None), default=None)
    if after is not None:
        upcoming = _first_after(schedule, str(zone), after)
        if upcoming is None or upcoming > now:
            return None
    return parse_schedule(schedule).latest(now, zone)


@lru_cache(maxsize=1024)
def _first_after(schedule: str, zone: str, after: datetime) -> datetime | None:
    return parse_schedule(schedule).next_after(after, ZoneInfo(zone))


def schedule_after_event(
    session: Session, workflow: Workflow | WorkflowDefinition, event: Event
) -> None:
    """The occurrence of a delayed workflow for ``event`` (its conditions held): due
    ``delay_minutes`` after the event, run once by a worker (``engine.occurrences``)."""
    session.add(
        WorkflowOccurrence(
            workflow_id=workflow.id or 0,
            key=f"event {event.id}",
            due_at=event.created_at + timedelta(minutes=workflow.delay_minutes or 0),
            event_id=event.id,
            ticket_id=event.ticket_id,
        )
    )
