"""Workflows as data: save (with validation), list, show, copy, enable and disable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from cxdesk.engine.conditions import condition_problems
from cxdesk.engine.loops import trigger_loop
from cxdesk.engine.scheduled import SCHEDULE_EVENT, refuse_over_cap, time_problems
from cxdesk.engine.tasks import task_problems
from cxdesk.errors import Conflict, NotFound, ValidationFailed, must_be_one_of
from cxdesk.i18n import _
from cxdesk.store.directory import get_team, require_admin
from cxdesk.store.models import Survey, User, Workflow, utcnow
from cxdesk.text import check_names

EVENTS = (
    "survey.response",
    "ticket.created",
    "ticket.assigned_from_queue",
    "ticket.status_changed",
    "ticket.escalated",
    "ticket.commented",
    "ticket.owner_changed",
    "message.received",  # a customer's email or SMS landed on the ticket (store.inbound)
    "message.bounced",  # an email the desk sent came back undelivered: e.g. fall back to SMS
    "ticket.created",  # e.g. the demo desk's check-in SMS with the position and estimate
    "ticket.recalled",  # a no-show put the ticket back at the head (store.noshow)
    "ticket.near_front",  # the ticket reached position N of its queue (engine.near_front)
    "sla.warning",  # a target passed its warning share (engine.sla_watch): e://Field/field
    "sla.breached",  # a target passed its due time; e://Field/field names it
)


def workflow_problems(
    session: Session,
    *,
    event: str,
    survey_name: str | None,
    conditions: Any,
    tasks: Any,
    schedule: str | None = None,
    delay_minutes: Any = None,
) -> list[str]:
    """Everything wrong with a workflow definition, one line each."""
    problems: list[str] = []
    if schedule is None and event not in EVENTS:
        problems.append(f"event {must_be_one_of(EVENTS)}")
    problems += time_problems(
        session,
        event=event,
        schedule=schedule,
        survey_name=survey_name,
        delay_minutes=delay_minutes,
        conditions=conditions,
        tasks=tasks,
    )
    questions: list[str] | None = None
    if survey_name:
        survey = session.exec(select(Survey).where(Survey.name == survey_name)).first()
        if survey is None:
            problems.append(_("no survey named {name!r}").format(name=survey_name))
        else:
            questions = [q["id"] for q in survey.questions]
    problems += condition_problems(conditions)
    if not isinstance(tasks, list) or not tasks:
        problems.append(_("tasks must be a non-empty list"))
    else:
        for index, task in enumerate(tasks, start=1):
            if not isinstance(task, dict):
                problems.append(_("task {index}: must be a table").format(index=index))
                continue
            problems += [
                _("task {index}: {problem}").format(index=index, problem=p)
                for p in task_problems(session, task, questions)
            ]
    return problems


def save_workflow(
    session: Session,
    *,
    actor: User | None,
    name: str,
    event: str | None = None,
    tasks: list[dict[str, Any]],
    conditions: dict[str, Any] | None = None,
    survey_name: str | None = None,
    enabled: bool = True,
    schedule: str | None = None,
    delay_minutes: int | None = None,
) -> Workflow:
    """Create or replace a workflow; an invalid one is refused with every problem listed.

    ``event`` (and optionally ``delay_minutes``: run that long after it, if the conditions
    still hold) or ``schedule`` (cron or friendly form, in the desk's zone: ``engine.schedule``).
    """
    require_admin(actor)
    check_names(name=name)
    conditions = conditions or {}
    event = event or (SCHEDULE_EVENT if schedule is not None else "")
    problems = workflow_problems(session, event=event, survey_name=survey_name,
                                 conditions=conditions, tasks=tasks, schedule=schedule,
                                 delay_minutes=delay_minutes)  # fmt: skip
    if problems:
        raise ValidationFailed({f"workflow {name}": "; ".join(problems)})
    if enabled:  # checked on an unsaved copy: a refused definition leaves the stored one
        _refuse_loop(session, Workflow(name=name, event=event, survey_name=survey_name,
                                       conditions=conditions, tasks=tasks))  # fmt: skip
    workflow = session.exec(select(Workflow).where(Workflow.name == name)).first() or Workflow(
        name=name, event=event
    )
    if schedule != workflow.schedule or (enabled and not workflow.enabled):
        # A new schedule, or one turned back on, catches up nothing from before.
        workflow.schedule, workflow.schedule_since = schedule, utcnow() if schedule else None
    workflow.event, workflow.survey_name, workflow.enabled = event, survey_name, enabled
    workflow.conditions, workflow.tasks = conditions, tasks
    workflow.delay_minutes = delay_minutes
    if enabled and schedule is not None:
        refuse_over_cap(session, workflow)
    session.add(workflow)
    session.flush()
    return workflow


def _refuse_loop(session: Session, workflow: Workflow) -> None:
    """Refuse ``workflow`` if, enabled, it would trigger itself (``engine.loops``)."""
    loop = trigger_loop(session, workflow)
    if loop is not None:
        raise ValidationFailed(
            {
                f"workflow {workflow.name}": _(
                    "its tasks would trigger it again and again ({loop}): change its event or "
                    "its tasks"
                ).format(loop=" -> ".join(loop))
            }
        )


def get_workflow(session: Session, name: str) -> Workflow:
    workflow = session.exec(select(Workflow).where(Workflow.name == name)).first()
    if workflow is None:
        raise NotFound(_("No workflow named {name!r}").format(name=name))
    return workflow


def list_workflows(session: Session) -> Sequence[Workflow]:
    return session.exec(select(Workflow).order_by(col(Workflow.name))).all()


def set_enabled(session: Session, *, actor: User | None, name: str, enabled: bool) -> Workflow:
    require_admin(actor)
    workflow = get_workflow(session, name)
    if enabled and not workflow.enabled:
        _refuse_loop(session, workflow)
        if workflow.schedule is not None:
            refuse_over_cap(session, workflow)
            workflow.schedule_since = utcnow()  # no catching up the runs it was off for
    workflow.enabled = enabled
    session.add(workflow)
    session.flush()
    return workflow


def copy_workflow(
    session: Session, *, actor: User | None, name: str, new_name: str, team: str | None = None
) -> Workflow:
    """Copy a workflow; ``team`` retargets its create_ticket tasks and its team conditions.

    The "9 products = 9 workflows" case: copy "Check-in: 360" as "Check-in: API" for team
    API, which also changes a condition ``q://product is 360`` to ``is API``.
    """
    require_admin(actor)
    source = get_workflow(session, name)
    if session.exec(select(Workflow).where(Workflow.name == new_name)).first() is not None:
        raise Conflict(_("Workflow {new_name!r} already exists").format(new_name=new_name))
    tasks = [dict(task) for task in source.tasks]
    conditions = source.conditions
    if team is not None:
        get_team(session, team)
        old_teams = {str(t["team"]) for t in tasks if t.get("team")}
        for task in tasks:
            if task.get("type") == "create_ticket":
                task["team"] = team
        conditions = _retarget(conditions, old_teams, team)
    return save_workflow(
        session,
        actor=actor,
        name=new_name,
        event=source.event,
        schedule=source.schedule,
        delay_minutes=source.delay_minutes,
        survey_name=source.survey_name,
        conditions=conditions,
        tasks=tasks,
        enabled=source.enabled,
    )


def _retarget(condition: dict[str, Any], old: set[str], new: str) -> dict[str, Any]:
    for group in ("all", "any"):
        if group in condition:
            return {group: [_retarget(part, old, new) for part in condition[group]]}
    if condition.get("value") in old:
        return {**condition, "value": new}
    return dict(condition)
