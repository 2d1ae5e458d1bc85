"""Gathering what an event's workflows may look at and pipe: ticket fields, data, answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlmodel import Session

from cxdesk.config import load_settings
from cxdesk.engine.piped import NAMESPACES, PipeContext
from cxdesk.store import in_hand
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.models import Event, SurveyResponse, Ticket, User
from cxdesk.store.survey_links import desk_secret, sign_ticket
from cxdesk.store.tickets import ticket_data
from cxdesk.store.waiting import ticket_wait, wait_in_words

WAITING_FIELDS = ("QueuePosition", "EstimatedWait")
"""Read only when a template or condition names them: a few statements each time."""


class LazyFields(Mapping[str, str]):
    """Piped fields, some worked out only when a template or condition names them: ``lazy``
    maps such a name to what gives its value (and those of the names worked out with it)."""

    def __init__(
        self, values: dict[str, str], lazy: Mapping[str, Callable[[], dict[str, str]]]
    ) -> None:
        self._given, self._values, self._lazy = values, dict(values), lazy

    def forgetting(self) -> LazyFields:
        """The same fields, those worked out so far forgotten (worked out again if named)."""
        return LazyFields(self._given, self._lazy)

    def __getitem__(self, name: str) -> str:
        if name not in self._values and name in self._lazy:
            self._values.update(self._lazy[name]())
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter((*self._values, *(n for n in self._lazy if n not in self._values)))

    def __len__(self) -> int:
        return len(set(self._values) | set(self._lazy))


def _waiting(session: Session, ticket: Ticket) -> dict[str, str]:
    """The waiting room's fields (``WAITING_FIELDS``: empty when the ticket is not waiting)."""
    wait = ticket_wait(session, ticket)
    return {
        "QueuePosition": str(wait.position) if wait else "",
        "EstimatedWait": wait_in_words(wait.wait_minutes) if wait else "",
    }


def ticket_fields(session: Session, ticket: Ticket) -> Mapping[str, str]:
    """The values ``${tck://Field/<name>}`` reads, as text."""
    owner = in_hand.get(session, User, ticket.owner_id) if ticket.owner_id else None
    desk_secret(session)  # made by the desk's first ticket, as ever: a link's check only reads
    teams = desk_definitions(session).team_names
    values = {
        "key": ticket.key or "",
        "title": ticket.title,
        "status": ticket.status,
        "priority": ticket.priority,
        "team": teams.get(ticket.team_id, ""),
        "originTeam": teams.get(ticket.origin_team_id, ""),
        "ownerName": owner.name if owner else "",
        "ownerEmail": owner.email if owner else "",
        "ownerUsername": owner.username if owner else "",
        "customerName": ticket.customer_name,
        "customerEmail": ticket.customer_email,
        "customerPhone": ticket.customer_phone,
        "customerComment": ticket.customer_comment,
        "source": ticket.source,
        "channel": ticket.channel,
        "createdAt": ticket.created_at.isoformat(),
        "updatedAt": ticket.updated_at.isoformat(),
        "resolvedAt": ticket.resolved_at.isoformat() if ticket.resolved_at else "",
        "responseId": str(ticket.response_id or ""),
    }
    return LazyFields(
        values,
        {
            **dict.fromkeys(WAITING_FIELDS, lambda: _waiting(session, ticket)),
            # the CSAT link's signed ref
            "surveyToken": lambda: {"surveyToken": sign_ticket(session, ticket)},
        },
    )


def context_for_event(
    session: Session, event: Event, *, ticket: Ticket | None = None
) -> PipeContext:
    """Everything the event's workflows may read: its ticket (or ``ticket``, one a task just
    created for it) and its survey response. What the transaction wrote is in hand
    (``store.in_hand``): only what it did not write is read."""
    if ticket is None and event.ticket_id:
        ticket = in_hand.get(session, Ticket, event.ticket_id)
    response_id = event.response_id or (ticket.response_id if ticket else None)
    response = in_hand.get(session, SurveyResponse, response_id) if response_id else None
    embedded = {
        "eventKind": event.kind,
        "fromValue": event.from_value or "",
        "toValue": event.to_value or "",
        "field": event.field_name or "",
        "detail": event.detail or "",
    }
    return PipeContext(
        ticket=ticket_fields(session, ticket) if ticket else {},
        data=dict(ticket_data(session, ticket)) if ticket else {},
        answers=dict(response.answers) if response else {},
        embedded=LazyFields(
            embedded, {"surveyUrl": lambda: {"surveyUrl": load_settings().resolved_survey_url}}
        ),
    )


MESSAGE_TASKS = frozenset({"send_email", "send_sms"})
"""Tasks that only queue a message (an outbox row, a ``message.*`` event no workflow hears):
nothing an event's context holds changes."""


def after_tasks(context: PipeContext, tasks: Sequence[Mapping[str, Any]]) -> PipeContext | None:
    """The context the event's next workflow reads once a workflow's ``tasks`` ran: None (to
    be gathered again) unless they only queued messages; then this one, its fields worked out
    on demand forgotten, as a new one would be (the wait in words is in the language in effect
    where it is named)."""
    if not all(task.get("type") in MESSAGE_TASKS for task in tasks):
        return None
    return replace(
        context,
        ticket=_forgetting(context.ticket),
        embedded=_forgetting(context.embedded),
    )


def _forgetting(fields: Mapping[str, str]) -> Mapping[str, str]:
    return fields.forgetting() if isinstance(fields, LazyFields) else fields


def resolver(context: PipeContext) -> Callable[[str], str]:
    """Turn a condition's field name (``q://product``) into its value in ``context``."""

    def resolve(name: str) -> str:
        for prefix in NAMESPACES:
            if name.startswith(prefix):
                return context.lookup(prefix, name[len(prefix) :])
        return ""

    return resolve
