"""Workflow tasks: what a matched workflow does, in order.

Implemented: ``create_ticket`` (optionally from a named ticket template). The email, SMS,
status, escalate and comment tasks are listed in ``PLANNED_TASKS`` and refused when a workflow
is saved until they exist, so a seed can never promise an action that silently does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session, select

from cxdesk.engine.piped import PipeContext, render, template_problems
from cxdesk.errors import NotFound
from cxdesk.store.models import (
    Event,
    Source,
    Survey,
    SurveyResponse,
    Ticket,
    TicketTemplate,
    User,
)
from cxdesk.store.tickets import TicketDraft, create_ticket

TASK_TYPES = ("create_ticket",)
PLANNED_TASKS = ("send_email", "send_sms", "change_status", "escalate", "comment")

# Keys a create_ticket task (or the ticket template it names) may set.
TICKET_TASK_KEYS = {
    "type", "template", "team", "priority", "status", "title", "comment_question", "data",
    "tags", "customer_name", "customer_email", "customer_phone", "channel",
}  # fmt: skip
TICKET_DEFAULTS: dict[str, Any] = {
    "priority": "medium",
    "status": "new",
    "customer_name": "${q://first_name} ${q://last_name}",
    "customer_email": "${q://email}",
    "customer_phone": "${q://phone}",
    "data": [],
    "tags": [],
    "channel": "in_person",
}


def get_ticket_template(session: Session, name: str) -> TicketTemplate:
    template = session.exec(select(TicketTemplate).where(TicketTemplate.name == name)).first()
    if template is None:
        raise NotFound(f"No ticket template named {name!r}")
    return template


def ticket_spec(session: Session, task: Mapping[str, Any]) -> dict[str, Any]:
    """The task's settings over its template's over the defaults."""
    spec = dict(TICKET_DEFAULTS)
    if task.get("template"):
        spec.update(get_ticket_template(session, str(task["template"])).definition)
    spec.update({k: v for k, v in task.items() if k not in ("type", "template")})
    return spec


def ticket_spec_problems(spec: Mapping[str, Any], questions: Iterable[str] | None) -> list[str]:
    """Problems with a create_ticket spec: unknown keys, bad placeholders, missing parts."""
    problems = [f"unknown key {key!r}" for key in spec if key not in TICKET_TASK_KEYS]
    for key in ("title", "customer_name", "customer_email", "customer_phone"):
        if key in spec:
            problems += [
                f"{key}: {p}" for p in template_problems(str(spec[key]), questions=questions)
            ]
    data = spec.get("data", [])
    if not isinstance(data, list) or not all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in data
    ):
        problems.append("data must be a list of [name, value template] pairs")
    else:
        for name, value in data:
            problems += [
                f"data {name}: {p}" for p in template_problems(str(value), questions=questions)
            ]
    return problems


def run_create_ticket(
    session: Session, task: Mapping[str, Any], context: PipeContext, event: Event
) -> Ticket:
    spec = ticket_spec(session, task)
    response = session.get(SurveyResponse, event.response_id) if event.response_id else None
    survey = session.get(Survey, response.survey_id) if response else None
    comment = ""
    if spec.get("comment_question"):
        comment = str(context.answers.get(str(spec["comment_question"]), "") or "")
    draft = TicketDraft(
        title=render(str(spec["title"]), context, header=True),
        team=render(str(spec["team"]), context, header=True),
        priority=str(spec["priority"]),
        status=str(spec["status"]),
        customer_name=" ".join(render(str(spec["customer_name"]), context, header=True).split()),
        customer_email=render(str(spec["customer_email"]), context, header=True),
        customer_phone=render(str(spec["customer_phone"]), context, header=True),
        customer_comment=comment,
        data=[(str(name), render(str(value), context)) for name, value in spec["data"]],
        tags=[str(tag) for tag in spec["tags"]],
        source=Source.checkin if survey and survey.kind == "checkin" else Source.survey,
        channel=str(spec["channel"]),
        response_id=response.id if response else None,
    )
    submitter = session.get(User, response.submitted_by_id) if response else None
    return create_ticket(session, actor=submitter, draft=draft)


def run_task(session: Session, task: Mapping[str, Any], context: PipeContext, event: Event) -> None:
    kind = task.get("type")
    if kind == "create_ticket":
        run_create_ticket(session, task, context, event)
        return
    raise NotFound(f"Workflow task type {kind!r} is not available")


def task_problems(
    session: Session, task: Mapping[str, Any], questions: Iterable[str] | None
) -> list[str]:
    kind = task.get("type")
    if kind in PLANNED_TASKS:
        return [f"task type {kind!r} is not available yet"]
    if kind not in TASK_TYPES:
        return [f"unknown task type {kind!r} (known: {', '.join(TASK_TYPES)})"]
    try:
        spec = ticket_spec(session, task)
    except NotFound as exc:
        return [str(exc)]
    problems = ticket_spec_problems(spec, questions)
    if not spec.get("title"):
        problems.append("create_ticket needs a title (in the task or its template)")
    if not spec.get("team"):
        problems.append("create_ticket needs a team")
    return problems
