"""What the ticket screen shows: one read of a ticket with everything its parts and dialogs
need (``read_ticket_view``, run in the screen's worker: fields, conversation, the customer's
other tickets, log...), and how those parts are worded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from cxdesk.i18n import N_, _
from cxdesk.labels import LABELLED, label, person_name
from cxdesk.screens.base import shown_time
from cxdesk.store.conversation import (
    ConversationItem,
    HistoryItem,
    attachment_text,
    conversation,
    customer_history,
    describe,
)
from cxdesk.store.db import read_session
from cxdesk.store.directory import list_statuses, list_teams, member_names, team_members
from cxdesk.store.escalation_steps import EscalationTimeline, escalation_timeline
from cxdesk.store.models import StatusCategory
from cxdesk.store.sla_display import SlaTimes
from cxdesk.store.tickets import (
    get_ticket,
    status_category,
    ticket_data,
    ticket_log,
    tickets_to_dicts,
)
from cxdesk.text import printable
from cxdesk.widgets.conversation import ConversationEntry
from cxdesk.widgets.timeline import TimelineStep

FIELDS = (
    (N_("Status"), "status"),
    (N_("Priority"), "priority"),
    (N_("Team"), "team"),
    (N_("Origin team"), "origin_team"),
    (N_("Owner"), "owner"),
    (N_("Source"), "source"),
    (N_("Channel"), "channel"),
    (N_("Tags"), "tags"),
)
"""(label, field) of the ticket column; the screen shows ``_(label)``."""
# Never editable: records stay true.
CUSTOMER_FIELDS = (
    (N_("Customer"), "customer_name"),
    (N_("Email"), "customer_email"),
    (N_("Phone"), "customer_phone"),
    (N_("Created"), "created_at"),
    (N_("Updated"), "updated_at"),
    (N_("Resolved"), "resolved_at"),
)
THANK_YOU = N_("Thank you for your feedback!")


@dataclass(frozen=True)
class TicketView:
    """One ticket as the screen shows it, with the choices its edit dialogs offer."""

    record: dict[str, object]
    data: list[tuple[str, str]]
    conversation: list[ConversationItem]
    """Notes, replies and the customer's messages, oldest first."""
    history: list[HistoryItem]
    """The customer's other tickets, newest first."""
    log: list[dict[str, object]]
    statuses: list[str]
    members_by_team: dict[str, list[str]]
    """Every team (in name order) with its members' usernames: the owner choices."""
    timeline: EscalationTimeline | None
    """None when the ticket was never escalated."""
    requester_id: int | None
    """Who submitted the ticket by hand (None for check-ins, surveys, campaigns)."""
    closed: bool
    """Its status is resolved-like (resolved, closed...): feedback may be left."""
    feedback_rating: int | None
    feedback_comment: str | None
    sla: SlaTimes | None = None
    """The SLA columns (None: no policy); the screen words them as the clock moves."""
    names: dict[str, str] = field(default_factory=dict)
    """Each member's name by username (the owner pickers show names)."""

    @property
    def team_members(self) -> list[str]:
        return self.members_by_team.get(str(self.record["team"]), [])

    @property
    def attachment_count(self) -> int:
        return sum(len(item.attachments) for item in self.conversation)


def read_ticket_view(engine: Engine, key: str) -> TicketView:
    with read_session(engine) as session:
        ticket = get_ticket(session, key)
        closed = status_category(session, ticket.status) == StatusCategory.resolved
        return TicketView(
            record=tickets_to_dicts(session, [ticket])[0],
            data=ticket_data(session, ticket),
            conversation=conversation(session, ticket),
            history=customer_history(session, ticket),
            log=ticket_log(session, ticket),
            statuses=[s.name for s in list_statuses(session)],
            members_by_team={
                t.name: [u.username for u in team_members(session, t)] for t in list_teams(session)
            },
            timeline=escalation_timeline(session, ticket),
            requester_id=ticket.requester_id,
            closed=closed,
            feedback_rating=ticket.feedback_rating if ticket.feedback_at else None,
            feedback_comment=ticket.feedback_comment,
            sla=SlaTimes.of(ticket),
            names=member_names(session),
        )


def timeline_steps(timeline: EscalationTimeline) -> list[TimelineStep]:
    """The timeline's steps as the screen words them: reached ones with their local time."""
    return [TimelineStep(_(s.name), shown_time(s.at), s.current) for s in timeline.steps]


def estimate_text(timeline: EscalationTimeline) -> str:
    if timeline.estimate is None:
        return _("Estimated resolution: not set")
    return _("Estimated resolution: {date}").format(date=timeline.estimate.isoformat())


def requester_note(view: TicketView, viewer_id: int | None) -> str:
    """What the ticket says about its closing and feedback, to this viewer ("" for nothing)."""
    if not view.closed:
        return ""
    if viewer_id is not None and viewer_id == view.requester_id:
        if view.feedback_rating is not None:
            return _(THANK_YOU)
        return _(
            "This ticket has been closed. If you have further questions, open a new ticket and "
            "reference this ticket ID ({key}). Press f to leave feedback."
        ).format(key=view.record["key"])
    if view.feedback_rating is not None:
        if view.feedback_comment:
            return _("Requester's feedback: {rating}/5: {comment}").format(
                rating=view.feedback_rating, comment=view.feedback_comment
            )
        return _("Requester's feedback: {rating}/5").format(rating=view.feedback_rating)
    if view.record["status"] != "closed":
        return ""
    return _(
        "This ticket has been closed. If you have further questions, open a new ticket and "
        "reference this ticket ID."
    )


def field_text(record: dict[str, object], name: str, names: Mapping[str, str] | None = None) -> str:
    """One field on one line, as the terminal may get it (``printable``); the owner by name
    (``names``, a ``TicketView``'s)."""
    value = record[name]
    if name == "owner" and value:
        value = person_name(str(value), names or {})
    if name.endswith("_at"):
        return shown_time(value)
    if name in LABELLED:
        return label(value)
    if isinstance(value, list):
        return printable(", ".join(str(item) for item in value), lines=False)
    return "" if value is None else printable(str(value), lines=False)


def conversation_entries(items: list[ConversationItem]) -> list[ConversationEntry]:
    """The conversation as the screen words it: who from and for (``describe``), local time."""
    return [
        ConversationEntry(
            kind=item.kind,
            header=f"{describe(item)} · {shown_time(item.at)}",
            body=item.body,
            files=tuple(
                _("attachment {file}").format(file=attachment_text(a)) for a in item.attachments
            ),
        )
        for item in items
    ]
