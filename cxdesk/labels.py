"""Human labels for the desk's codes: event kinds, channels, sources, statuses and their
categories, priorities, roles and presence, in the current language.

Codes stay codes in the database, ``--json`` and exports; people read ``label(code)`` (or
``event_label(kind)``) where a screen or the CLI's human output shows one. A code the desk
does not know (a custom status, a new event kind) is shown as it is. The tables are built per
language, on first use (``pgettext``: one English word may need two translations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from cxdesk.i18n import N_, _, current_language, pgettext

LABELLED = frozenset({"status", "priority", "channel", "source", "role", "category"})
"""The fields whose values are codes shown by their label."""


@cache
def _event_labels(language: str) -> dict[str, str]:
    return {
        "survey.response": pgettext("event", "Survey response"),
        "survey.answered": pgettext("event", "Survey answered"),
        "ticket.created": pgettext("event", "Created"),
        "ticket.assigned_from_queue": pgettext("event", "Pulled from queue"),
        "ticket.status_changed": pgettext("event", "Status changed"),
        "ticket.owner_changed": pgettext("event", "Owner changed"),
        "ticket.updated": pgettext("event", "Updated"),
        "ticket.commented": pgettext("event", "Comment"),
        "ticket.escalated": pgettext("event", "Escalated"),
        "ticket.escalation_step": pgettext("event", "Escalation step"),
        "ticket.estimate": pgettext("event", "Estimate"),
        "ticket.feedback": pgettext("event", "Feedback"),
        "ticket.pull_undone": pgettext("event", "Pull undone"),
        "ticket.replied": pgettext("event", "Reply"),
        "ticket.linked": pgettext("event", "Linked"),
        "ticket.recalled": pgettext("event", "Called again"),
        "ticket.near_front": pgettext("event", "Near the front"),
        "message.queued": pgettext("event", "Message queued"),
        "message.sent": pgettext("event", "Message sent"),
        "message.retry": pgettext("event", "Message retried"),
        "message.failed": pgettext("event", "Message failed"),
        "message.dead": pgettext("event", "Message given up"),
        "message.skipped": pgettext("event", "Message skipped"),
        "message.stale": pgettext("event", "Message out of date"),
        "message.received": pgettext("event", "Message received"),
        "message.auto_reply": pgettext("event", "Automatic reply"),
        "message.bounced": pgettext("event", "Message bounced"),
        "message.suppressed": pgettext("event", "Message held back"),
        "message.opted_out": pgettext("event", "Opted out of SMS"),
        "message.opted_in": pgettext("event", "Opted in to SMS"),
        "attachment.refused": pgettext("event", "Attachment refused"),
        "user.presence_changed": pgettext("event", "Presence changed"),
        "sla.warning": pgettext("event", "SLA warning"),
        "sla.breached": pgettext("event", "SLA breached"),
        "workflow.scheduled": pgettext("event", "Scheduled workflow ran"),
    }


@cache
def _labels(language: str) -> dict[str, str]:
    return {
        # channels and sources (where a ticket came from)
        "in_person": pgettext("channel", "In person"),
        "phone": pgettext("channel", "Phone"),
        "chat": pgettext("channel", "Chat"),
        "email": pgettext("channel", "Email"),
        "conference": pgettext("channel", "Conference"),
        "sms": pgettext("channel", "SMS"),
        "checkin": pgettext("source", "Check-in"),
        "survey": pgettext("source", "Survey"),
        "manual": pgettext("source", "Manual"),
        "campaign": pgettext("source", "Campaign"),
        # built-in statuses and the status categories
        "new": pgettext("ticket status", "New"),
        "open": pgettext("ticket status", "Open"),
        "escalated": pgettext("ticket status", "Escalated"),
        "resolved": pgettext("ticket status", "Resolved"),
        "closed": pgettext("ticket status", "Closed"),
        "paused": pgettext("ticket status", "Paused"),
        # priorities
        "low": pgettext("priority", "Low"),
        "medium": pgettext("priority", "Medium"),
        "high": pgettext("priority", "High"),
        "critical": pgettext("priority", "Critical"),
        # roles
        "admin": pgettext("role", "Admin"),
        "expert": pgettext("role", "Expert"),
        "volunteer": pgettext("role", "Volunteer"),
        # presence
        "available": pgettext("presence", "Available"),
        "away": pgettext("presence", "Away"),
        "break": pgettext("presence", "On a break"),
    }


def label(code: object) -> str:
    """The human label of a channel, source, status, category, priority, role or presence
    code in the current language; an unknown code (a custom status) as it is."""
    text = "" if code is None else str(code)
    return _labels(current_language()).get(text, text)


def event_label(kind: object) -> str:
    """The human label of an event kind ("ticket.status_changed" -> "Status changed")."""
    text = "" if kind is None else str(kind)
    return _event_labels(current_language()).get(text, text)


FIELD_NAMES = {"status": N_("Status"), "priority": N_("Priority"), "team": N_("Team"),
               "owner": N_("Owner")}  # fmt: skip
"""A ticket's fields an event names (``store.tickets.EDITABLE_FIELDS``), as people read them."""


def field_name(field: str) -> str:
    """A ticket field's name as people read it ("status" -> "Status"); another as it is."""
    return _(FIELD_NAMES[field]) if field in FIELD_NAMES else field


def event_what(kind: object, field: object) -> str:
    """What an event did, as a log line says it: its label and the field or channel it
    names ("Status changed Status", "Message queued Email"); an unknown field as it is."""
    name = "" if field is None else str(field)
    named = field_name(name) if name in FIELD_NAMES else label(name)
    return f"{event_label(kind)} {named}".strip()


def event_detail(kind: object, detail: object) -> str:
    """An event's detail for people: a new ticket's source by its label ("Check-in"), any
    other detail as the desk wrote it."""
    text = "" if detail is None else str(detail)
    return label(text) if kind == "ticket.created" else text


def owner_choices(members: Iterable[str], names: Mapping[str, str]) -> list[tuple[str, str]]:
    """An owner picker's choices: each member by name (their username when it has none),
    valued by username."""
    return [(person_name(member, names), member) for member in members]


def person_name(username: str, names: Mapping[str, str]) -> str:
    """A user as people read them: by name (``names``: ``store.directory.member_names``),
    their username when they have none or are no longer active."""
    return names.get(username) or username


def field_value(field: object, value: object, names: Mapping[str, str] | None = None) -> str:
    """A field's value as people read it: by its label when the field holds a code (status,
    priority, channel...), the owner by name (given ``names``), else as it is ("" for
    nothing)."""
    if value is None:
        return ""
    if field == "owner" and names is not None and value:
        return person_name(str(value), names)
    return label(value) if field in LABELLED else str(value)
