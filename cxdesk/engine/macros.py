"""Macros: named actions an expert applies to a ticket with one key (``cxdesk ticket macro``).

A macro is data: a name, a team (None: shared by every team) and a list of actions, checked
when it is saved (every problem, one line each), never when it is applied:

- ``{type = "set", status = ..., priority = ..., team = ..., owner = ...}``: the ticket
  editor's fields (``store.tickets.EDITABLE_FIELDS``; owner ``""`` unassigns);
- ``{type = "note", body = ...}``: an internal note (the customer never sees it);
- ``{type = "reply", body = ..., channel = "email"|"sms", languages = {it = {body = ...}}}``:
  a reply to the customer, in their language (else the desk's, else as written)
  (``store.replies``; no channel: email when the ticket has an address, else SMS).

Note and reply bodies are piped text (``${tck://Field/customerName}``, ``engine.piped``),
read from the ticket as it was when the macro was applied. At most one action of each type.

Applying one (``apply_macro``) goes through the desk's own operations in the caller's
transaction (``engine.dispatch.unit_of_work``: the events' workflows run before it commits):
the fields with ``update_ticket`` (its comment: the macro's note, else "Macro NAME"), else
the note with ``write_comment``, then the reply with ``reply_to_customer``. Any refusal (the
customer has no email, the owner is not on the team...) rolls all of it back. Every log line
it writes carries ``macro NAME`` in its detail. ``if_version`` (the version the user saw,
``store.ticket_versions``) is checked once, before anything is written, when the macro sets
fields: a ticket changed since is refused whole (``StaleVersion``). A macro that only adds a
note and/or a reply is let through, as ``update_ticket``'s rule has it: adding to the
conversation never contradicts a change. Whoever may edit the ticket may apply a macro
of its team or a shared one; only admins add and delete macros (they speak for a team to its
customers, as workflows do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, or_, update
from sqlmodel import Session, col, select

from cxdesk.engine.context import context_for_event
from cxdesk.engine.piped import render, template_problems
from cxdesk.errors import Conflict, DeskError, NotFound, PermissionDenied, must_be_one_of
from cxdesk.i18n import N_, _, in_language
from cxdesk.labels import field_name, field_value
from cxdesk.store.customer_language import (
    LANGUAGES_KEY,
    desk_language,
    text_in_language,
    ticket_language,
    variant_problems,
)
from cxdesk.store.directory import get_status, get_team, get_user, is_member, require_admin
from cxdesk.store.events import PENDING_KEY
from cxdesk.store.models import Event, Macro, Priority, Team, User
from cxdesk.store.replies import CHANNELS, reply_to_customer
from cxdesk.store.ticket_versions import check_version
from cxdesk.store.tickets import (
    EDITABLE_FIELDS,
    can_work_on,
    get_ticket,
    require_staff,
    update_ticket,
    write_comment,
)
from cxdesk.text import clean_name, text_problem

ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "set": ("type", *EDITABLE_FIELDS),
    "note": ("type", "body"),
    "reply": ("type", "body", "channel", LANGUAGES_KEY),
}
MAX_TEXT_CHARS = 10_000
"""A note's or a reply's template, at most (an SMS reply is further held to 1,600)."""
NAME_CHARS = 200


# -- checking ----------------------------------------------------------------------------------


def action_problems(session: Session, action: Any, macro_team: Team | None) -> list[str]:
    """Everything wrong with one action, one phrase each."""
    if not isinstance(action, Mapping):
        return ['must be a table, e.g. {type = "note", body = "..."}']
    kind = action.get("type")
    if kind not in ACTION_KEYS:
        return [f"unknown type {kind!r} (known: {', '.join(ACTION_KEYS)})"]
    problems = [f"unknown key {key!r}" for key in action if key not in ACTION_KEYS[kind]]
    problems += [
        f"{key} must be text"
        for key, value in action.items()
        if key != LANGUAGES_KEY and not isinstance(value, str)
    ]
    if LANGUAGES_KEY in action:
        problems += variant_problems(action[LANGUAGES_KEY], ("body",))
    if problems:
        return problems
    for code, texts in (action.get(LANGUAGES_KEY) or {}).items():
        problems += [f"{LANGUAGES_KEY}.{code}.{p}" for p in _body_problems(texts.get("body"))]
    if kind == "set":
        return _set_problems(session, action, macro_team)
    body = action.get("body", "")
    if not body.strip():
        problems.append(_("a {kind} needs a body").format(kind=kind))
    else:
        problems += _body_problems(body)
    if kind == "reply" and action.get("channel", "email") not in CHANNELS:
        problems.append(f"channel {must_be_one_of(CHANNELS)}")
    return problems


def _body_problems(body: Any) -> list[str]:
    """A note's or reply's text: not too long, allowed characters, known placeholders."""
    if not isinstance(body, str) or not body.strip():
        return [_("body must be text")]
    if len(body) > MAX_TEXT_CHARS:
        return [
            _("body is {n:,} characters; at most {most:,}").format(n=len(body), most=MAX_TEXT_CHARS)
        ]
    if (bad := text_problem(body, lines=True)) is not None:
        return [f"body {bad}"]
    return [f"body: {problem}" for problem in template_problems(body)]


def _set_problems(
    session: Session, action: Mapping[str, str], macro_team: Team | None
) -> list[str]:
    fields = {key: value for key, value in action.items() if key != "type"}
    if not fields:
        return [_("a set needs at least one of {fields}").format(fields=", ".join(EDITABLE_FIELDS))]
    problems: list[str] = []
    if "priority" in fields and fields["priority"] not in Priority.__members__:
        problems.append(f"priority {must_be_one_of(Priority)}")
    target_team = macro_team
    for key, find in (("status", get_status), ("team", get_team)):
        if key in fields:
            try:
                found = find(session, fields[key])
            except NotFound as exc:
                problems.append(str(exc))
                continue
            if isinstance(found, Team):
                target_team = found
    owner = fields.get("owner")
    if owner:
        try:
            user = get_user(session, owner)
        except NotFound as exc:
            problems.append(str(exc))
        else:
            if target_team is not None and not is_member(session, user, target_team.id):
                problems.append(
                    _("owner {user} is not on team {team}").format(
                        user=user.username, team=target_team.name
                    )
                )
    return problems


def macro_problems(session: Session, actions: Any, team: Team | None) -> list[str]:
    """Everything wrong with a macro's actions, one line each (``action 2: ...``)."""
    if not isinstance(actions, list) or not actions:
        return [_("actions must be a non-empty list")]
    problems: list[str] = []
    seen: set[str] = set()
    for index, action in enumerate(actions, start=1):
        problems += [
            _("action {index}: {problem}").format(index=index, problem=p)
            for p in action_problems(session, action, team)
        ]
        kind = action.get("type") if isinstance(action, Mapping) else None
        if isinstance(kind, str) and kind in seen:
            problems.append(
                _("action {index}: a second {kind} (one of each type at most)").format(
                    index=index, kind=kind
                )
            )
        seen.add(str(kind))
    return problems


# -- saving, reading, deleting -----------------------------------------------------------------


def save_macro(
    session: Session,
    *,
    actor: User | None,
    name: str,
    actions: list[dict[str, Any]],
    team: str | None = None,
    replace: bool = False,
) -> Macro:
    """Add a macro (admins; actor None: the seed); ``replace`` brings an existing one in line,
    otherwise an existing name is refused. Refused with every problem, one line each."""
    require_admin(actor)
    name = clean_name(name, limit=NAME_CHARS)
    owner_team = get_team(session, team) if team else None
    problems = macro_problems(session, actions, owner_team)
    if problems:
        raise MacroProblems(name, problems)
    macro = session.exec(select(Macro).where(Macro.name == name)).first()
    if macro is not None and not replace:
        raise Conflict(
            _("Macro {name!r} already exists (delete it first, or replace it)").format(name=name)
        )
    if macro is None:
        macro = Macro(name=name, created_by_id=actor.id if actor else None)
    macro.team_id = owner_team.id if owner_team else None
    macro.actions = [dict(action) for action in actions]
    session.add(macro)
    session.flush()
    return macro


class MacroProblems(DeskError):
    """A macro refused on save; ``problems`` lists each one, a line each when there are several
    (as a seed's problems are listed)."""

    def __init__(self, name: str, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"Macro {name!r}: {problems[0]}")
        else:
            listed = "\n  ".join(problems)
            super().__init__(
                f"Macro {name!r}: {len(problems)} problems, nothing saved:\n  {listed}"
            )


def get_macro(session: Session, name: str) -> Macro:
    macro = session.exec(select(Macro).where(Macro.name == name.strip())).first()
    if macro is None:
        raise NotFound(_("No macro named {name!r}").format(name=name))
    return macro


def list_macros(session: Session, *, team_id: int | None = None) -> Sequence[Macro]:
    """Every macro by name; with ``team_id``, those of that team and the shared ones."""
    statement = select(Macro).order_by(col(Macro.name))
    if team_id is not None:
        statement = statement.where(
            or_(col(Macro.team_id).is_(None), col(Macro.team_id) == team_id)
        )
    return session.exec(statement).all()


def delete_macro(session: Session, *, actor: User | None, name: str) -> None:
    require_admin(actor)
    session.delete(get_macro(session, name))
    session.flush()


def team_names(session: Session) -> dict[int | None, str]:
    """Team names by id, for showing macros (None: shared)."""
    return {team.id: team.name for team in session.exec(select(Team)).all()}


def describe_action(action: Mapping[str, Any], *, labelled: bool = False) -> str:
    """One action in a few words: ``status -> resolved``, ``note: ...``, ``reply: ...``;
    ``labelled``: a set's fields and codes as people read them (``Status -> Resolved``), else
    as codes (JSON)."""
    kind = action.get("type")
    if kind == "set":
        return ", ".join(
            f"{field_name(key) if labelled else key} -> "
            f"{(field_value(key, value) if labelled else value) or _('(nobody)')}"
            for key, value in action.items()
            if key != "type"
        )
    body = " ".join(str(action.get("body", "")).split())
    short = body if len(body) <= 60 else body[:59] + "…"
    if kind == "reply":
        channel = action.get("channel")
        if channel:
            return _("reply by {channel}: {text}").format(channel=channel, text=short)
        return _("reply: {text}").format(text=short)
    if kind == "note":
        return _("note: {text}").format(text=short)
    return f"{kind}: {short}"


def describe(macro: Macro, *, labelled: bool = False) -> str:
    """What a macro does, its actions in order: ``status -> resolved; reply (email): Hi…``
    (``labelled``: for people, see ``describe_action``)."""
    return "; ".join(describe_action(action, labelled=labelled) for action in macro.actions)


# -- applying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What applying a macro did: the ticket's key and status after, the log lines written."""

    key: str
    macro: str
    status: str
    events: int
    replied_by: str | None

    def summary(self) -> str:
        """``EXP-12: macro Resolved at the desk applied (resolved; reply queued by email)``."""
        if self.replied_by:
            return _("{key}: macro {macro} applied ({status}; reply queued by {channel})").format(
                key=self.key, macro=self.macro, status=self.status, channel=self.replied_by
            )
        return _("{key}: macro {macro} applied ({status})").format(
            key=self.key, macro=self.macro, status=self.status
        )


def apply_macro(
    session: Session, *, actor: User, key: str, name: str, if_version: int | None = None
) -> Applied:
    """Apply macro ``name`` to ticket ``key`` in the caller's transaction (see the module);
    a refusal raises a ``DeskError`` with one line, and the caller's rollback undoes all.

    ``if_version``: the version the user saw. A macro that sets fields is refused
    (``StaleVersion``, naming who changed what) when the ticket changed since, checked once
    before anything is written; one that only adds a note or a reply is not (comments never
    conflict, as with ``update_ticket``)."""
    macro = get_macro(session, name)
    require_staff(actor, N_("apply macros"))
    ticket = get_ticket(session, key, lock=True)
    if not can_work_on(session, actor, ticket):
        raise PermissionDenied(_("You are not on the team of {key}").format(key=ticket.key))
    if macro.team_id is not None and macro.team_id != ticket.team_id:
        teams = team_names(session)
        raise PermissionDenied(
            _("Macro {name!r} is for team {team}; {key} is on team {ticket_team}").format(
                name=macro.name,
                team=teams.get(macro.team_id),
                key=ticket.key,
                ticket_team=teams.get(ticket.team_id),
            )
        )
    assert ticket.key is not None
    by_type = {str(action["type"]): action for action in macro.actions}
    changes = {k: v for k, v in by_type.get("set", {}).items() if k != "type"}
    if changes:
        check_version(session, ticket, if_version)  # the ticket is locked: nothing slips in
    context = context_for_event(session, Event(kind="macro", ticket_id=ticket.id))
    note = render(str(by_type["note"]["body"]), context) if "note" in by_type else None
    first_event = len(session.info.get(PENDING_KEY, []))
    if changes:
        comment = note or f"Macro {macro.name}"
        update_ticket(session, actor=actor, key=ticket.key, comment=comment, changes=changes)
    elif note:
        write_comment(session, actor, ticket, note, [])
    reply, replied_by = by_type.get("reply"), None
    if reply is not None:
        language = ticket_language(session, ticket)  # the customer's, else the desk's
        reply = text_in_language(reply, language, desk_language(session))
        with in_language(language):
            body = render(str(reply["body"]), context)
        replied_by = reply_to_customer(
            session, actor=actor, key=ticket.key, body=body, channel=reply.get("channel")
        ).channel
    written = session.info.get(PENDING_KEY, [])[first_event:]
    _log_under(session, written, f"macro {macro.name}")
    return Applied(ticket.key, macro.name, ticket.status, len(written), replied_by)


def _log_under(session: Session, event_ids: list[int], label: str) -> None:
    """Put ``label`` in front of the detail of the log lines ``event_ids`` (one UPDATE)."""
    if not event_ids:
        return
    detail = col(Event.detail)
    session.execute(
        update(Event)
        .where(col(Event.id).in_(event_ids))
        .values(detail=func.coalesce(literal(f"{label}; ") + detail, literal(label)))
    )


# -- the seed's [[macros]] ----------------------------------------------------------------------


def apply_seed_macro(session: Session, entry: Mapping[str, Any]) -> bool:
    """One ``[[macros]]`` entry of a seed (name, team, actions): created when missing, brought
    in line when it differs, untouched when it is the same; True when created."""
    existing = session.exec(select(Macro).where(Macro.name == entry["name"])).first()
    team = get_team(session, entry["team"]) if entry.get("team") else None
    wanted = (team.id if team else None, entry["actions"])
    if existing is not None and (existing.team_id, existing.actions) == wanted:
        return False
    try:
        save_macro(session, actor=None, name=entry["name"], actions=entry["actions"],
                   team=entry.get("team"), replace=True)  # fmt: skip
    except MacroProblems as refused:  # the seed names the entry and its line
        raise DeskError("; ".join(refused.problems)) from None
    return existing is None
