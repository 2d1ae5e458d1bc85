"""Workflow tasks: what a matched workflow does, in order.

- ``create_ticket``: a ticket from a title template, team, priority, the comment question and
  an ordered ticket-data mapping; optionally from a named ticket template. Tasks after it in
  the same workflow act on (and pipe from) the new ticket.
- ``send_email`` (to, from, reply_to, subject, body, delay_minutes, valid_minutes) and
  ``send_sms`` (to, body, delay_minutes, valid_minutes): rendered now, queued in the outbox in
  this transaction; not sent if not delivered within ``valid_minutes`` of being due (default
  ``outbox.DEFAULT_VALID_FOR``) or once its ticket has moved on (``cxdesk.engine.staleness``).
  Its ``languages`` table gives its subject and body per language (``{"it": {"body": ...}}``):
  the message is written in its ticket's customer's language, else the desk's, else as written
  (``cxdesk.store.customer_language``).
  An SMS to a number that opted out (texted STOP, ``store.sms_optout``) is not queued: its
  ticket's log says so (``message.suppressed``). Nor is a message that would answer inbound
  mail that may not be answered, or an address answered within the period
  (``cxdesk.engine.suppression``): ``message.suppressed`` too.
- ``change_status`` (status, optional comment), ``escalate`` (optional comment), ``comment``
  (body): act on the event's ticket as the desk itself.
- ``set_priority`` (priority: a level, or ``raise`` for one step up, critical staying
  critical; optional comment): e.g. on ``sla.warning``. Logged as a ``ticket.updated``.

Every template is checked when the workflow is saved: an unknown placeholder is refused then,
never left as a blank at send time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from cxdesk.engine.context import context_for_event
from cxdesk.engine.outbox import enqueue
from cxdesk.engine.piped import PipeContext, render, template_problems
from cxdesk.engine.suppression import hold_back_reason
from cxdesk.errors import DeskError, NotFound, must_be_one_of
from cxdesk.i18n import DESK_LANGUAGE_SETTING, LANGUAGES, _, in_language, language_code
from cxdesk.names import GIVEN_FIRST_TEMPLATE, name_template
from cxdesk.store import in_hand
from cxdesk.store.customer_language import (
    LANGUAGES_KEY,
    desk_language,
    text_in_language,
    variant_problems,
)
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.directory import get_setting, get_status
from cxdesk.store.events import record_event
from cxdesk.store.in_hand import given_or_get
from cxdesk.store.models import (
    PRIORITY_RANK,
    Event,
    Priority,
    Source,
    SurveyResponse,
    Ticket,
    TicketTemplate,
    User,
    utcnow,
)
from cxdesk.store.sla import reapply_policy
from cxdesk.store.sms_optout import opt_out_reason
from cxdesk.store.tickets import TicketDraft, change_status, create_ticket, write_comment

TASK_TYPES = ("create_ticket", "send_email", "send_sms", "change_status", "escalate", "comment",
              "set_priority")  # fmt: skip
RAISE = "raise"
"""``set_priority``'s one step up (low -> medium -> high -> critical)."""

# Keys each task type may carry; the templated ones are checked for placeholders on save.
TASK_KEYS: dict[str, set[str]] = {
    "create_ticket": {
        "type", "template", "team", "priority", "status", "title", "comment_question", "data",
        "tags", "customer_name", "customer_email", "customer_phone", "channel",
    },
    "send_email": {"type", "to", "from", "reply_to", "subject", "body", "delay_minutes",
                   "valid_minutes", "languages"},
    "send_sms": {"type", "to", "body", "delay_minutes", "valid_minutes", "languages"},
    "change_status": {"type", "status", "comment"},
    "escalate": {"type", "comment"},
    "comment": {"type", "body"},
    "set_priority": {"type", "priority", "comment"},
}  # fmt: skip
TEMPLATED_KEYS = {
    "send_email": ("to", "from", "reply_to", "subject", "body"),
    "send_sms": ("to", "body"),
    "change_status": ("comment",),
    "escalate": ("comment",),
    "comment": ("body",),
    "set_priority": ("comment",),
}
LANGUAGE_KEYS = {"send_email": ("subject", "body"), "send_sms": ("body",)}
"""What a message's ``languages`` table may give per language (the rest is shared)."""
MAX_VALID_MINUTES = 366 * 24 * 60
REQUIRED_KEYS = {
    "send_email": ("to", "subject", "body"),
    "send_sms": ("to", "body"),
    "change_status": ("status",),
    "comment": ("body",),
    "set_priority": ("priority",),
}
TICKET_DEFAULTS: dict[str, Any] = {
    "priority": "medium",
    "status": "new",
    "customer_name": GIVEN_FIRST_TEMPLATE,  # in the customer's order: run_create_ticket
    "customer_email": "${q://email}",
    "customer_phone": "${q://phone}",
    "data": [],
    "tags": [],
    "channel": "in_person",
}


@dataclass
class TaskRun:
    """One workflow's run for one event: what its tasks act on and pipe from."""

    event: Event
    workflow_id: int | None
    context: PipeContext
    ticket_id: int | None
    written_at: datetime | None = None
    """When its messages' cause happened (default: the event's time); a time-based run's is
    its due time, from which their validity window counts (``outbox.enqueue``)."""


# -- create_ticket ----------------------------------------------------------------------------


def get_ticket_template(session: Session, name: str) -> TicketTemplate:
    template = session.exec(select(TicketTemplate).where(TicketTemplate.name == name)).first()
    if template is None:
        raise NotFound(_("No ticket template named {name!r}").format(name=name))
    return template


def ticket_spec(session: Session, task: Mapping[str, Any]) -> dict[str, Any]:
    """The task's settings over its template's over the defaults."""
    spec = dict(TICKET_DEFAULTS)
    if task.get("template"):
        name = str(task["template"])
        template = desk_definitions(session).ticket_templates.get(name)
        if template is None:
            template = get_ticket_template(session, name).definition
        spec.update(_json_copy(template))  # the cached definitions stay as they are
    spec.update({k: v for k, v in task.items() if k not in ("type", "template")})
    return spec


def _json_copy(value: Any) -> Any:
    """A copy of a JSON value's lists and objects, as plain lists and dicts (what ``deepcopy``
    made of a template, at a third of its cost: no memo, no dispatch on the type)."""
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    return value


def ticket_spec_problems(spec: Mapping[str, Any], questions: Iterable[str] | None) -> list[str]:
    """Problems with a create_ticket spec: unknown keys, bad placeholders, bad data mapping."""
    allowed = TASK_KEYS["create_ticket"]
    problems = [f"unknown key {key!r}" for key in spec if key not in allowed]
    for key in ("title", "customer_name", "customer_email", "customer_phone"):
        if key in spec:
            problems += [
                f"{key}: {p}" for p in template_problems(str(spec[key]), questions=questions)
            ]
    data = spec.get("data", [])
    if not isinstance(data, list) or not all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in data
    ):
        problems.append(_("data must be a list of [name, value template] pairs"))
    else:
        for name, value in data:
            problems += [
                f"data {name}: {p}" for p in template_problems(str(value), questions=questions)
            ]
    return problems


def customer_language(
    session: Session, context: PipeContext, response: SurveyResponse | None
) -> str | None:
    """The language a check-in's customer chose (the check-in's language, else a ``language``
    answer), else the desk's."""
    chosen = (response.language if response else None) or language_code(
        str(context.answers.get("language") or "")
    )
    return chosen or language_code(get_setting(session, DESK_LANGUAGE_SETTING))


def run_create_ticket(session: Session, task: Mapping[str, Any], run: TaskRun) -> Ticket:
    spec = ticket_spec(session, task)
    context, event = run.context, run.event
    response = (
        in_hand.get(session, SurveyResponse, event.response_id) if event.response_id else None
    )
    language = customer_language(session, context, response)
    answers = context.answers
    ordered = name_template(
        language, str(answers.get("first_name") or ""), str(answers.get("last_name") or "")
    )
    if ordered != GIVEN_FIRST_TEMPLATE:  # 山田 太郎 in Japanese, in the name and the title
        for key in ("customer_name", "title"):
            if key in spec:
                spec[key] = str(spec[key]).replace(GIVEN_FIRST_TEMPLATE, ordered)
    survey = (
        desk_definitions(session).surveys.get(
            desk_definitions(session).survey_names.get(response.survey_id, "")
        )
        if response
        else None
    )
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
        # the name's order (hall board) and the language the customer is written to
        customer_language=(response.language if response else None) or language or None,
        customer_comment=comment,
        data=[(str(name), render(str(value), context)) for name, value in spec["data"]],
        tags=[str(tag) for tag in spec["tags"]],
        source=Source.checkin if survey and survey.kind == "checkin" else Source.survey,
        channel=str(spec["channel"]),
        response_id=response.id if response else None,
    )
    submitter = (
        given_or_get(session, User, response.submitted_by_id)
        if response and response.submitted_by_id
        else None
    )
    return create_ticket(session, actor=submitter, draft=draft)


# -- messages and ticket changes --------------------------------------------------------------


def _delay(task: Mapping[str, Any]) -> timedelta:
    return timedelta(minutes=float(task.get("delay_minutes", 0) or 0))


def _valid_for(task: Mapping[str, Any]) -> timedelta | None:
    """The template's validity window; None: the outbox's default."""
    minutes = task.get("valid_minutes")
    return None if minutes is None else timedelta(minutes=float(minutes))


def _not_queued(
    session: Session, run: TaskRun, channel: str, *, kind: str, to: str | None, detail: str
) -> None:
    """Log on the run's ticket why a message was not queued (no workflow reacts to it)."""
    record_event(session, kind=kind, actor=None, ticket_id=run.ticket_id, field_name=channel,
                 to_value=to, detail=detail, triggers_workflows=False)  # fmt: skip


def _in_customer_language(
    session: Session, task: Mapping[str, Any], run: TaskRun
) -> tuple[Mapping[str, Any], str]:
    """The task's texts in the language of its ticket's customer (else the desk's), and
    that language. The desk's setting is read once at most (a check-in: 59 statements, 58
    before languages)."""
    ticket = in_hand.get(session, Ticket, run.ticket_id) if run.ticket_id else None
    chosen = ticket.customer_language if ticket is not None else None
    desk = None if chosen in LANGUAGES else desk_language(session)
    language = desk or str(chosen)
    variants = task.get(LANGUAGES_KEY)
    if not variants:
        return task, language
    if desk is None and language not in variants:
        desk = desk_language(session)  # the fallback
    return text_in_language(task, language, desk), language


def _queue_message(session: Session, task: Mapping[str, Any], run: TaskRun, channel: str) -> None:
    task, language = _in_customer_language(session, task, run)
    with in_language(language):  # what the desk fills in (an estimate in words) too
        _queue_rendered(session, task, run, channel)


def _queue_rendered(session: Session, task: Mapping[str, Any], run: TaskRun, channel: str) -> None:
    context = run.context
    to = render(str(task["to"]), context, header=True).strip()
    if not to:
        _not_queued(session, run, channel, kind="message.skipped", to=None,
                    detail=f"no recipient for {task['to']}")  # fmt: skip
        return
    held_back = hold_back_reason(session, event=run.event, to=to)
    if held_back:  # an automatic answer to inbound mail it must not answer (RFC 3834)
        _not_queued(session, run, channel, kind="message.suppressed", to=to, detail=held_back)
        return
    if channel == "sms" and (opted_out := opt_out_reason(session, to)) is not None:
        _not_queued(session, run, channel, kind="message.suppressed", to=to,
                    detail=f"not queued: {opted_out}")  # fmt: skip
        return
    enqueue(
        session,
        channel=channel,
        to=to,
        subject=render(str(task["subject"]), context, header=True) if channel == "email" else None,
        body=render(str(task["body"]), context),
        from_addr=render(str(task.get("from", "")), context, header=True) or None,
        reply_to=render(str(task.get("reply_to", "")), context, header=True) or None,
        ticket_id=run.ticket_id,
        event_id=run.event.id,
        workflow_id=run.workflow_id,
        delay=_delay(task),
        valid_for=_valid_for(task),
        written_at=run.written_at or run.event.created_at,
    )


def _ticket(session: Session, run: TaskRun, kind: str) -> Ticket:
    ticket = in_hand.get(session, Ticket, run.ticket_id) if run.ticket_id else None
    if ticket is None:
        raise DeskError(
            _("Workflow task {kind!r} needs a ticket, and event {event} has none").format(
                kind=kind, event=run.event.kind
            )
        )
    return ticket


def priority_after(current: str, wanted: str) -> str:
    """The priority ``set_priority`` leaves: ``wanted``, or one step above ``current`` for
    ``raise`` (critical stays critical)."""
    if wanted != RAISE:
        return wanted
    rank = PRIORITY_RANK[Priority(current)] - 1
    return next(p for p, r in PRIORITY_RANK.items() if r == max(rank, 0)).value


def _set_priority(session: Session, ticket: Ticket, wanted: str) -> None:
    old, new = ticket.priority, priority_after(ticket.priority, wanted)
    if new == old:
        return
    ticket.priority, ticket.updated_at = new, utcnow()
    reapply_policy(session, ticket)  # a policy may be for the new priority
    session.add(ticket)
    session.flush()
    record_event(session, kind="ticket.updated", actor=None, ticket_id=ticket.id,
                 field_name="priority", from_value=old, to_value=new)  # fmt: skip


def run_task(session: Session, task: Mapping[str, Any], run: TaskRun) -> None:
    """Run one task; after ``create_ticket`` the run acts on the new ticket."""
    kind = task.get("type")
    if kind == "create_ticket":
        ticket = run_create_ticket(session, task, run)
        run.ticket_id = ticket.id
        run.context = context_for_event(session, run.event, ticket=ticket)
    elif kind in ("send_email", "send_sms"):
        _queue_message(session, task, run, "email" if kind == "send_email" else "sms")
    elif kind in ("change_status", "escalate"):
        ticket = _ticket(session, run, kind)
        status = get_status(session, "escalated" if kind == "escalate" else str(task["status"]))
        change_status(session, None, ticket, status)
        if task.get("comment"):
            write_comment(session, None, ticket, render(str(task["comment"]), run.context), [])
    elif kind == "comment":
        ticket = _ticket(session, run, kind)
        write_comment(session, None, ticket, render(str(task["body"]), run.context), [])
    elif kind == "set_priority":
        ticket = _ticket(session, run, kind)
        _set_priority(session, ticket, str(task["priority"]))
        if task.get("comment"):
            write_comment(session, None, ticket, render(str(task["comment"]), run.context), [])
    else:
        raise NotFound(_("Workflow task type {kind!r} is not available").format(kind=kind))


def _variant_problems(variants: Any, kind: str, questions: Iterable[str] | None) -> list[str]:
    """A message's texts per language: known languages, its own keys, good placeholders."""
    keys = LANGUAGE_KEYS[kind]
    problems = variant_problems(variants, keys)
    if problems:
        return problems
    for code, texts in variants.items():
        for key, text in texts.items():
            problems += [
                f"{LANGUAGES_KEY}.{code}.{key}: {p}"
                for p in template_problems(str(text), questions=questions)
            ]
    return problems


def task_problems(
    session: Session, task: Mapping[str, Any], questions: Iterable[str] | None
) -> list[str]:
    """Everything wrong with one task definition, checked when its workflow is saved."""
    kind = task.get("type")
    if kind not in TASK_TYPES:
        return [f"unknown task type {kind!r} (known: {', '.join(TASK_TYPES)})"]
    if kind == "create_ticket":
        try:
            spec = ticket_spec(session, task)
        except NotFound as exc:
            return [str(exc)]
        problems = ticket_spec_problems(spec, questions)
        if not spec.get("title"):
            problems.append(_("create_ticket needs a title (in the task or its template)"))
        if not spec.get("team"):
            problems.append(_("create_ticket needs a team"))
        return problems
    problems = [
        _("unknown key {key!r}").format(key=key) for key in task if key not in TASK_KEYS[str(kind)]
    ]
    problems += [
        _("{kind} needs {key}").format(kind=kind, key=key)
        for key in REQUIRED_KEYS.get(str(kind), ())
        if not task.get(key)
    ]
    for key in TEMPLATED_KEYS[str(kind)]:
        if key in task:
            problems += [
                f"{key}: {p}" for p in template_problems(str(task[key]), questions=questions)
            ]
    if LANGUAGES_KEY in task:
        problems += _variant_problems(task[LANGUAGES_KEY], str(kind), questions)
    if "delay_minutes" in task:
        delay = task["delay_minutes"]
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            problems.append(_("delay_minutes must be a number of minutes, 0 or more"))
    if "valid_minutes" in task:
        valid = task["valid_minutes"]
        if (
            isinstance(valid, bool)
            or not isinstance(valid, int | float)
            or not (0 < valid <= MAX_VALID_MINUTES)
        ):
            problems.append(
                _(
                    "valid_minutes must be a number of minutes, more than 0 and at most "
                    "{most} (366 days)"
                ).format(most=MAX_VALID_MINUTES)
            )
    if (
        kind == "set_priority"
        and task.get("priority")
        and task["priority"] not in (*Priority, RAISE)
    ):
        problems.append(f"priority {must_be_one_of((*Priority, RAISE))}")
    if kind == "change_status" and task.get("status"):
        try:
            get_status(session, str(task["status"]))
        except NotFound as exc:
            problems.append(str(exc))
    return problems
