"""Ticket operations: create, update, comment, requester close and feedback.

Each function takes the session and the acting user, checks permissions itself, writes the
change and its events, and flushes; the caller's transaction commits (or rolls back all of it).
Pull next is in ``store.pull``: one statement that commits on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from cxdesk.errors import (
    Conflict,
    DeskError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    must_be_one_of,
)
from cxdesk.i18n import N_, _
from cxdesk.search_fold import fold, fold_fields
from cxdesk.store import sla, together
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.directory import (
    get_setting,
    get_status,
    get_team,
    get_user,
    is_member,
    team_members,
)
from cxdesk.store.events import EventFields, event_values, record_event, recorded
from cxdesk.store.in_hand import new_row, new_values, set_new, written
from cxdesk.store.lean import QueueStats as QueueStats  # the lean first fill reads them too
from cxdesk.store.lean import aware as _aware  # noqa: F401  (imported from here)
from cxdesk.store.lean import format_wait as format_wait
from cxdesk.store.lean import queue_stats
from cxdesk.store.models import (
    SEARCHED_FIELDS,
    Attachment,
    Comment,
    CommentKind,
    Event,
    Priority,
    Queue,
    Role,
    Source,
    Status,
    StatusCategory,
    Team,
    Ticket,
    TicketData,
    TicketTag,
    User,
    count_as_new,
    utcnow,
)
from cxdesk.store.prepared import ManyRows
from cxdesk.store.ticket_versions import check_version
from cxdesk.store.user_files import read_regular_file
from cxdesk.text import check_names, text_problem

MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 500 * 1024
ATTACHMENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".har": "application/json",
}
READ_ONLY_FIELDS = ("customer_name", "customer_email", "created_at")
EDITABLE_FIELDS = ("status", "priority", "team", "owner")
CLOSED_MESSAGE = N_(
    "This ticket has been closed. If you have further questions, open a new ticket and "
    "reference this ticket ID"
)


@dataclass(frozen=True)
class NewAttachment:
    """A file to attach: its name (the extension decides the type) and its bytes."""

    filename: str
    content: bytes


@dataclass
class TicketDraft:
    """What a ticket is created from (by a workflow, the manual form or a campaign)."""

    title: str
    team: str
    priority: str = Priority.medium
    status: str = "new"
    customer_name: str = ""
    customer_email: str = ""
    customer_phone: str = ""
    customer_language: str | None = None
    """A code of ``cxdesk.i18n.LANGUAGES``; None: the desk's language."""
    customer_comment: str = ""
    data: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = Source.manual
    channel: str = "in_person"
    owner: str | None = None
    response_id: int | None = None


# -- reading ----------------------------------------------------------------------------------


def get_ticket(session: Session, key: str, *, lock: bool = False) -> Ticket:
    """The ticket with this key; ``lock`` takes its row lock until the transaction ends."""
    statement = select(Ticket).where(Ticket.key == key.strip().upper())
    if lock:
        statement = statement.with_for_update()
    ticket = session.exec(statement).first()
    if ticket is None:
        raise NotFound(_("No ticket {key!r}").format(key=key))
    return ticket


_TICKETS = Ticket.__table__  # type: ignore[attr-defined]
_TICKET_COLUMNS = [column.name for column in _TICKETS.columns]
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_WRITTEN_DATA_KEY = "cxdesk_ticket_data"
"""Per ticket id, the data this session wrote with it (ticket data never changes after)."""
_INSERT_DATA = ManyRows(
    TicketData.__table__,  # type: ignore[attr-defined]
    keys=["ticket_id", "position", "name", "value"],
)


def ticket_data(session: Session, ticket: Ticket) -> list[tuple[str, str]]:
    written = session.info.get(_WRITTEN_DATA_KEY, {}).get(ticket.id)
    if written is not None:  # created in this transaction: its workflows pipe from it
        return list(written)
    rows = session.exec(
        select(TicketData)
        .where(TicketData.ticket_id == ticket.id)
        .order_by(col(TicketData.position))
    ).all()
    return [(row.name, row.value) for row in rows]


def ticket_tags(session: Session, ticket: Ticket) -> list[str]:
    rows = session.exec(
        select(TicketTag.tag).where(TicketTag.ticket_id == ticket.id).order_by(col(TicketTag.tag))
    ).all()
    return list(rows)


def status_category(session: Session, name: str) -> str:
    return get_status(session, name).category


def tickets_to_dicts(session: Session, tickets: Sequence[Ticket]) -> list[dict[str, object]]:
    """Tickets as plain dicts (the CLI's JSON), loading related rows in a few queries."""
    ids = [t.id for t in tickets]
    teams = {t.id: t.name for t in session.exec(select(Team)).all()}
    owner_ids = {t.owner_id for t in tickets if t.owner_id is not None}
    users = (
        {u.id: u for u in session.exec(select(User).where(col(User.id).in_(owner_ids))).all()}
        if owner_ids
        else {}
    )
    data: dict[int | None, list[TicketData]] = {}
    tags: dict[int | None, list[str]] = {}
    if ids:
        for row in session.exec(
            select(TicketData)
            .where(col(TicketData.ticket_id).in_(ids))
            .order_by(col(TicketData.ticket_id), col(TicketData.position))
        ).all():
            data.setdefault(row.ticket_id, []).append(row)
        for tag in session.exec(select(TicketTag).where(col(TicketTag.ticket_id).in_(ids))).all():
            tags.setdefault(tag.ticket_id, []).append(tag.tag)
    result: list[dict[str, object]] = []
    for t in tickets:
        owner = users.get(t.owner_id) if t.owner_id is not None else None
        result.append(
            {
                "key": t.key,
                "title": t.title,
                "status": t.status,
                "priority": t.priority,
                "team": teams.get(t.team_id),
                "origin_team": teams.get(t.origin_team_id),
                "owner": owner.username if owner else None,
                "owner_name": owner.name if owner else None,
                "customer_name": t.customer_name,
                "customer_email": t.customer_email,
                "customer_phone": t.customer_phone,
                "customer_comment": t.customer_comment,
                "data": {row.name: row.value for row in data.get(t.id, [])},
                "tags": sorted(tags.get(t.id, [])),
                "source": t.source,
                "channel": t.channel,
                "response_id": t.response_id,
                "created_at": t.created_at.isoformat(),
                "updated_at": t.updated_at.isoformat(),
                "resolved_at": t.resolved_at.isoformat() if t.resolved_at else None,
                "recalls": t.recalls,  # no-shows the customer was called back after
                "version": t.version,  # for ticket update --if-version (store.ticket_versions)
            }
        )
    return result


def list_tickets(
    session: Session,
    *,
    status: str | None = None,
    team: str | None = None,
    owner: str | None = None,
    limit: int = 200,
) -> Sequence[Ticket]:
    """Newest first, filtered; ``owner`` may be ``none`` for unowned tickets."""
    statement = select(Ticket)
    if status:
        statement = statement.where(Ticket.status == get_status(session, status).name)
    if team:
        statement = statement.where(Ticket.team_id == get_team(session, team).id)
    if owner == "none":
        statement = statement.where(col(Ticket.owner_id).is_(None))
    elif owner:
        statement = statement.where(Ticket.owner_id == get_user(session, owner).id)
    statement = statement.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    return session.exec(statement.limit(limit)).all()


# -- creating ---------------------------------------------------------------------------------


def require_staff(actor: User | None, action: str) -> None:
    if actor is not None and actor.role not in (Role.admin, Role.expert):
        # TRANSLATORS: {action} is one of the N_ phrases given to require_staff ("create tickets")
        message = _("A {role} cannot {action}")
        raise PermissionDenied(message.format(role=actor.role, action=_(action)))


def _check_priority(priority: str) -> str:
    if priority not in Priority.__members__:
        raise ValidationFailed({"priority": must_be_one_of(Priority)})
    return priority


def _clean_email(value: str, field_name: str = "customer_email") -> str:
    from email_validator import EmailNotValidError, validate_email  # loads on use

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(
            {field_name: _("not a valid email address ({exc})").format(exc=exc)}
        ) from None


def create_ticket(session: Session, *, actor: User | None, draft: TicketDraft) -> Ticket:
    """Write a ticket with its data, tags and ``ticket.created`` event; key is PREFIX-id."""
    check_names(customer_name=draft.customer_name)
    for tag in draft.tags:
        check_names(tag=tag)
    known = desk_definitions(session)  # or the lookup that refuses an unknown name
    team = known.teams.get(draft.team) or get_team(session, draft.team)
    status = known.statuses.get(draft.status) or get_status(session, draft.status)
    _check_priority(draft.priority)
    title = " ".join(draft.title.split())[:300]
    if not title:
        raise ValidationFailed({"title": _("is required")})
    owner = None
    if draft.owner:
        owner = get_user(session, draft.owner)
        if not is_member(session, owner, team.id):
            raise ValidationFailed(
                {
                    "owner": _("{owner} is not on team {team}").format(
                        owner=owner.username, team=team.name
                    )
                }
            )
    assert team.id is not None
    now = utcnow()
    ticket = new_row(
        Ticket,
        dict(
            title=title,
            status=status.name,
            priority=draft.priority,
            origin_team_id=team.id,
            team_id=team.id,
            owner_id=owner.id if owner else None,
            requester_id=actor.id if actor and draft.source == Source.manual else None,
            customer_name=draft.customer_name.strip()[:200],
            customer_email=draft.customer_email.strip(),
            customer_phone=draft.customer_phone.strip(),
            customer_language=draft.customer_language,
            customer_comment=draft.customer_comment,
            source=draft.source,
            channel=draft.channel,
            response_id=draft.response_id,
            created_at=now,
            updated_at=now,
            resolved_at=now if status.category == StatusCategory.resolved else None,
            sla_paused_at=now if status.category == StatusCategory.paused else None,
        ),
    )  # as Ticket(...) makes it, a fraction of the cost
    sla.start_clocks(session, ticket)
    head = f"{get_setting(session, 'ticket_prefix')}-"  # the key is PREFIX-id
    data = [{"position": position, "name": name, "value": value}
            for position, (name, value) in enumerate(draft.data)]  # fmt: skip
    created = EventFields(kind="ticket.created", actor=actor, detail=draft.source)
    # The ticket's id is taken by the statement that writes it, its key and its search text
    # made around the id there (a key folds as its head, then its digits): on PostgreSQL
    # with its data and its event too (one round trip), on SQLite (in process) alone.
    fold_head = fold(head)
    fold_tail = fold_fields("", *(getattr(ticket, name) for name in SEARCHED_FIELDS[1:]))
    around = {"key": (head, ""), "search_fold": (fold_head, fold_tail)}
    values = new_values(ticket, _TICKET_COLUMNS)
    if session.get_bind().dialect.name == "postgresql":
        line = event_values(**created)
        new_id, line_id = together.new_row_with_many_and_line(
            session, table=_TICKETS, row=values, around_id=around, many=_INSERT_DATA,
            rows=data, events=_EVENTS, line=line, into="ticket_id",
        )  # fmt: skip
        recorded(session, line_id, line | {"ticket_id": new_id})
    else:  # the write lock is held (BEGIN IMMEDIATE): the id SQLite would give a rowid table
        next_id = "SELECT coalesce(max(id), 0) + 1 AS id FROM ticket"
        new_id = together.new_row_around_id(
            session, table=_TICKETS, row=values, around_id=around, next_id=next_id
        )
        _INSERT_DATA.write(session, [row | {"ticket_id": new_id} for row in data])
        created["ticket_id"] = new_id
        record_event(session, **created)
    set_new(ticket, id=new_id, key=f"{head}{new_id}",
            search_fold=f"{fold_head}{new_id}{fold_tail}")  # fmt: skip
    written(session, ticket)  # in hand: its workflows read it without a reload
    count_as_new(session, ticket)
    session.info.setdefault(_WRITTEN_DATA_KEY, {})[ticket.id] = list(draft.data)
    tags = sorted({t.strip() for t in draft.tags if t.strip()})
    if tags:
        session.add_all([TicketTag(ticket_id=new_id, tag=tag) for tag in tags])
        session.flush()
    if owner is not None:
        record_event(
            session,
            kind="ticket.owner_changed",
            actor=actor,
            ticket_id=ticket.id,
            field_name="owner",
            to_value=owner.username,
        )
    return ticket


def create_manual_ticket(
    session: Session,
    *,
    actor: User,
    customer_email: str,
    team: str,
    comment: str,
    priority: str = Priority.medium,
    status: str = "new",
    owner: str | None = None,
    customer_name: str = "",
    title: str | None = None,
) -> Ticket:
    """The "+" form: an expert or admin opens a ticket by hand."""
    require_staff(actor, N_("create tickets"))
    errors: dict[str, str] = {}
    email = ""
    try:
        email = _clean_email(customer_email)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if not comment.strip():
        errors["comment"] = _("is required")
    if priority not in Priority.__members__:
        errors["priority"] = must_be_one_of(Priority)
    if len(customer_name.strip()) > 200:
        errors["customer_name"] = _("must be at most {n} characters").format(n=200)
    elif (problem := text_problem(customer_name)) is not None:
        errors["customer_name"] = problem
    if errors:
        raise ValidationFailed(errors)
    if owner is None:
        members = team_members(session, get_team(session, team))
        if len(members) == 1:
            owner = members[0].username
    first_line = comment.strip().splitlines()[0]
    draft = TicketDraft(
        title=title or first_line[:80],
        team=team,
        priority=priority,
        status=status,
        customer_name=customer_name,
        customer_email=email,
        customer_comment=comment.strip(),
        source=Source.manual,
        owner=owner,
    )
    return create_ticket(session, actor=actor, draft=draft)


# -- updating ---------------------------------------------------------------------------------


def change_status(session: Session, actor: User | None, ticket: Ticket, status: Status) -> None:
    """Set the status with its timestamps and events; no permission check (callers do it,
    or it is the workflow engine acting for the desk)."""
    old = ticket.status
    if old == status.name:
        return
    now = utcnow()
    sla.status_changed(session, ticket, status_category(session, old), status.category, now)
    ticket.status = status.name
    ticket.updated_at = now
    if status.category == StatusCategory.resolved:
        ticket.resolved_at = ticket.resolved_at or now
        ticket.queue_band = 1  # reopened later, it waits in line again, not at the head
    else:
        ticket.resolved_at = None
    if status.name == "closed":
        ticket.closed_at = now
    if status.name == "escalated":
        ticket.escalated_at = now
    session.add(ticket)
    session.flush()
    record_event(
        session,
        kind="ticket.status_changed",
        actor=actor,
        ticket_id=ticket.id,
        field_name="status",
        from_value=old,
        to_value=status.name,
    )
    if status.name == "escalated":
        record_event(session, kind="ticket.escalated", actor=actor, ticket_id=ticket.id)


def can_work_on(session: Session, actor: User, ticket: Ticket) -> bool:
    return (
        actor.role == Role.admin
        or ticket.owner_id == actor.id
        or is_member(session, actor, ticket.team_id)
    )


def update_ticket(
    session: Session,
    *,
    actor: User,
    key: str,
    comment: str,
    changes: Mapping[str, str | None],
    attachments: Sequence[NewAttachment] = (),
    if_version: int | None = None,
) -> Ticket:
    """Change status, priority, team and/or owner, with the comment every update requires.

    ``changes`` maps field -> new value (owner: a username, or "" to unassign). Customer
    name, email and created date are refused: records stay true. ``if_version``: the version
    the user saw; a ticket changed since is refused (``store.ticket_versions``).
    """
    require_staff(actor, N_("edit tickets"))
    errors: dict[str, str] = {}
    for name in changes:
        if name in READ_ONLY_FIELDS:
            errors[name] = _("cannot be changed (records stay true)")
        elif name not in EDITABLE_FIELDS:
            errors[name] = _("is not an editable field ({fields})").format(
                fields=", ".join(EDITABLE_FIELDS)
            )
    if not comment.strip():
        errors["comment"] = _("is required for every update")
    if "priority" in changes and changes["priority"] not in Priority.__members__:
        errors["priority"] = must_be_one_of(Priority)
    if errors:
        raise ValidationFailed(errors)
    check_attachments(attachments)
    ticket = get_ticket(session, key, lock=True)
    if not can_work_on(session, actor, ticket):
        raise PermissionDenied(_("You are not on the team of {key}").format(key=ticket.key))
    check_version(session, ticket, if_version)
    status_name, team_name = changes.get("status"), changes.get("team")
    new_status = get_status(session, status_name) if status_name else None
    new_team = get_team(session, team_name) if team_name else None
    team_id = new_team.id if new_team and new_team.id is not None else ticket.team_id
    owner_id = ticket.owner_id
    if "owner" in changes:
        owner_name = changes["owner"]
        owner_id = get_user(session, owner_name).id if owner_name else None
    elif new_team is not None and new_team.id != ticket.team_id:
        members = team_members(session, new_team)
        if len(members) == 1:
            owner_id = members[0].id
        elif owner_id is not None and not is_member(session, _user(session, owner_id), team_id):
            owner_id = None
    if owner_id is not None and not is_member(session, _user(session, owner_id), team_id):
        owner_user = _user(session, owner_id)
        team_label = _team(session, team_id).name
        raise ValidationFailed(
            {
                "owner": _("{owner} is not on team {team}").format(
                    owner=owner_user.username, team=team_label
                )
            }
        )

    now = utcnow()
    matched_by = (ticket.team_id, ticket.priority)
    if "priority" in changes and changes["priority"] != ticket.priority:
        _log_field(session, actor, ticket, "priority", ticket.priority, changes["priority"])
        ticket.priority = str(changes["priority"])
    if new_team is not None and new_team.id != ticket.team_id:
        _log_field(
            session, actor, ticket, "team", _team(session, ticket.team_id).name, new_team.name
        )
        ticket.team_id = team_id
    if (ticket.team_id, ticket.priority) != matched_by:
        # Only then: a policy disabled or reordered since leaves the tickets it timed alone.
        sla.reapply_policy(session, ticket)
    if owner_id != ticket.owner_id:
        old = _user(session, ticket.owner_id).username if ticket.owner_id else None
        new = _user(session, owner_id).username if owner_id else None
        ticket.owner_id = owner_id
        record_event(
            session,
            kind="ticket.owner_changed",
            actor=actor,
            ticket_id=ticket.id,
            field_name="owner",
            from_value=old,
            to_value=new,
        )
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    if new_status is not None:
        change_status(session, actor, ticket, new_status)
    write_comment(session, actor, ticket, comment, attachments)
    return ticket


def _user(session: Session, user_id: int | None) -> User:
    user = session.get(User, user_id)
    assert user is not None
    return user


def _team(session: Session, team_id: int | None) -> Team:
    team = session.get(Team, team_id)
    assert team is not None
    return team


def _log_field(
    session: Session, actor: User, ticket: Ticket, name: str, old: object, new: object
) -> None:
    record_event(
        session,
        kind="ticket.updated",
        actor=actor,
        ticket_id=ticket.id,
        field_name=name,
        from_value=old,
        to_value=new,
    )


# -- comments ---------------------------------------------------------------------------------


def attachment_problem(filename: str, size: int) -> str | None:
    """Why a file cannot be attached (its type by extension, its size), or None."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in ATTACHMENT_TYPES:
        allowed = ", ".join(sorted({s.lstrip(".").upper() for s in ATTACHMENT_TYPES}))
        return _("file type not allowed (allowed: {allowed})").format(allowed=allowed)
    if size > MAX_ATTACHMENT_BYTES:
        return _("is {size} KB; the limit is {limit} KB").format(
            size=size // 1024, limit=MAX_ATTACHMENT_BYTES // 1024
        )
    return None


def check_attachments(attachments: Sequence[NewAttachment]) -> None:
    """Refuse more than ``MAX_ATTACHMENTS`` files, a type not allowed or a file over 500 KB."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValidationFailed(
            {"attachments": f"at most {MAX_ATTACHMENTS} files per message ({len(attachments)})"}
        )
    errors = {
        item.filename: problem
        for item in attachments
        if (problem := attachment_problem(item.filename, len(item.content))) is not None
    }
    if errors:
        raise ValidationFailed(errors)


def write_comment(
    session: Session,
    actor: User | None,
    ticket: Ticket,
    body: str,
    attachments: Iterable[NewAttachment],
) -> Comment:
    """An internal note with its files, and its ``ticket.commented`` log line."""
    files = list(attachments)
    comment = store_comment(session, actor, ticket, body, files)
    record_event(
        session,
        kind="ticket.commented",
        actor=actor,
        ticket_id=ticket.id,
        detail=attachment_names(files) or None,
    )
    return comment


def store_comment(
    session: Session,
    actor: User | None,
    ticket: Ticket,
    body: str,
    attachments: Iterable[NewAttachment],
    *,
    kind: str = CommentKind.note,
    channel: str | None = None,
) -> Comment:
    """A comment of ``kind`` with its files (checked by the caller: ``check_attachments``),
    the ticket's ``updated_at`` moved on; no log line (the caller writes the one it means)."""
    assert ticket.id is not None
    comment = Comment(
        ticket_id=ticket.id,
        author_id=actor.id if actor else None,
        body=body.strip(),
        kind=kind,
        channel=channel,
    )
    session.add(comment)
    session.flush()
    assert comment.id is not None
    for item in attachments:
        suffix = PurePath(item.filename).suffix.lower()
        session.add(
            Attachment(
                comment_id=comment.id,
                filename=PurePath(item.filename).name,
                content_type=ATTACHMENT_TYPES[suffix],
                size=len(item.content),
                content=item.content,
            )
        )
    ticket.updated_at = utcnow()
    session.add(ticket)
    session.flush()
    return comment


def attachment_names(attachments: Iterable[NewAttachment]) -> str:
    """The files' names as the log shows them: ``a.pdf, b.png`` (empty for none)."""
    return ", ".join(PurePath(item.filename).name for item in attachments)


def add_comment(
    session: Session,
    *,
    actor: User,
    key: str,
    body: str,
    attachments: Sequence[NewAttachment] = (),
) -> Comment:
    """A reply on the ticket's conversation, with up to 5 attachments of the allowed types."""
    if not body.strip():
        raise ValidationFailed({"comment": _("is required")})
    check_attachments(attachments)
    ticket = get_ticket(session, key, lock=True)
    is_requester = ticket.requester_id is not None and ticket.requester_id == actor.id
    if not is_requester:
        require_staff(actor, N_("comment on tickets"))
        if not can_work_on(session, actor, ticket):
            raise PermissionDenied(_("You are not on the team of {key}").format(key=ticket.key))
    return write_comment(session, actor, ticket, body, attachments)


def ticket_comments(session: Session, ticket: Ticket) -> Sequence[Comment]:
    return session.exec(
        select(Comment).where(Comment.ticket_id == ticket.id).order_by(col(Comment.id))
    ).all()


def _usernames(session: Session) -> dict[int | None, str]:
    return {u.id: u.username for u in session.exec(select(User)).all()}


def ticket_log(session: Session, ticket: Ticket) -> list[dict[str, object]]:
    """Every event of the ticket, oldest first: when, who, what, from -> to."""
    users = _usernames(session)
    events = session.exec(
        select(Event).where(Event.ticket_id == ticket.id).order_by(col(Event.id))
    ).all()
    return [
        {
            "at": e.created_at.isoformat(),
            "who": users.get(e.actor_id, "system") if e.actor_id else "system",
            "kind": e.kind,
            "field": e.field_name,
            "from": e.from_value,
            "to": e.to_value,
            "detail": e.detail,
        }
        for e in events
    ]


def read_attachment_files(paths: Sequence[Path]) -> list[NewAttachment]:
    """The files to attach: regular files only, each refused before more than its limit is
    read (``store.user_files``)."""
    if len(paths) > MAX_ATTACHMENTS:
        raise DeskError(
            _("At most {limit} attachments per message ({n})").format(
                limit=MAX_ATTACHMENTS, n=len(paths)
            )
        )
    return [
        NewAttachment(
            filename=path.name,
            content=read_regular_file(path, limit=MAX_ATTACHMENT_BYTES, what="attachment"),
        )
        for path in paths
    ]


# -- the requester's close and feedback --------------------------------------------------------


def close_by_requester(session: Session, *, actor: User, key: str) -> Ticket:
    """The person who submitted the ticket closes it while it is open."""
    ticket = get_ticket(session, key, lock=True)
    if ticket.requester_id != actor.id:
        raise PermissionDenied(
            _("Only the person who submitted {key} can close it").format(key=ticket.key)
        )
    if status_category(session, ticket.status) == StatusCategory.resolved:
        raise Conflict(_(CLOSED_MESSAGE))
    change_status(session, actor, ticket, get_status(session, "closed"))
    return ticket


def leave_feedback(
    session: Session, *, actor: User, key: str, rating: int, comment: str = ""
) -> Ticket:
    """Once a ticket is closed or resolved its requester may rate it, once."""
    ticket = get_ticket(session, key, lock=True)
    if ticket.requester_id != actor.id:
        raise PermissionDenied(
            _("Only the person who submitted {key} can leave feedback").format(key=ticket.key)
        )
    if status_category(session, ticket.status) != StatusCategory.resolved:
        raise Conflict(_("Feedback can be left once the ticket is closed"))
    if ticket.feedback_at is not None:
        raise Conflict(_("Feedback was already given for this ticket. Thank you!"))
    if not 1 <= rating <= 5:
        raise ValidationFailed({"rating": _("must be between 1 and 5")})
    ticket.feedback_rating = rating
    ticket.feedback_comment = comment.strip() or None
    ticket.feedback_at = utcnow()
    session.add(ticket)
    session.flush()
    record_event(session, kind="ticket.feedback", actor=actor, ticket_id=ticket.id, to_value=rating)
    return ticket


# -- queue overview ---------------------------------------------------------------------------


def queue_overview(session: Session) -> list[QueueStats]:
    """Every queue with how many tickets wait (unowned, unresolved) and since when."""
    waiting = (
        select(
            Ticket.team_id,
            func.count().label("waiting"),
            func.min(Ticket.created_at).label("oldest"),
        )
        .join(Status, col(Status.name) == col(Ticket.status))
        .where(col(Ticket.owner_id).is_(None), Status.category == StatusCategory.open)
        .group_by(col(Ticket.team_id))
        .subquery()
    )
    rows = session.execute(
        sa_select(
            col(Queue.name),
            col(Team.name),
            col(Queue.ordering),
            waiting.c.waiting,
            waiting.c.oldest,
            col(Queue.assign),
        )
        .join(Team, col(Team.id) == col(Queue.team_id))
        .outerjoin(waiting, waiting.c.team_id == col(Queue.team_id))
        .order_by(col(Queue.name))
    ).all()
    return [queue_stats(tuple(row)) for row in rows]  # the lean read's rows too
