"""Who and what the desk is made of: users, teams, memberships, queues, statuses, settings.

Lookups raise ``NotFound`` with a message naming the missing thing; adds raise ``Conflict`` on
a duplicate name. Admin-only operations take the acting user and check the role here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, must_be_one_of
from cxdesk.i18n import _
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.lean import zone_named
from cxdesk.store.lean import zone_problem as zone_problem  # read without SQLAlchemy too
from cxdesk.store.models import (
    BUILTIN_STATUSES,
    DeskSetting,
    Membership,
    Queue,
    QueueAssign,
    QueueOrder,
    Role,
    Status,
    StatusCategory,
    Team,
    User,
)
from cxdesk.store.passwords import hash_password
from cxdesk.store.phones import normalise_phone
from cxdesk.text import clean_name, text_problem

DEFAULT_SETTINGS = {"ticket_prefix": "EXP", "phone_region": "US"}
TIME_ZONE_SETTING = "time_zone"
"""The desk's time zone (an IANA name, default UTC): scheduled workflows' wall times."""


def require_admin(actor: User | None) -> None:
    """System actions (actor None: the CLI's own setup, the seed) and admins pass."""
    if actor is not None and actor.role != Role.admin:
        raise PermissionDenied(
            _("Only an admin can do this ({actor} is {role})").format(
                actor=actor.username, role=actor.role
            )
        )


# -- settings ---------------------------------------------------------------------------------


def get_setting(session: Session, name: str) -> str:
    """The desk setting ``name`` (from the cached definitions, ``store.definitions``)."""
    value = desk_definitions(session).settings.get(name)
    return value if value is not None else DEFAULT_SETTINGS.get(name, "")


def whole_number_setting(session: Session, name: str, default: int) -> int:
    """A desk setting that holds a whole number (0 or more); ``default`` when it is unset or
    not one."""
    value = get_setting(session, name).strip()
    return int(value) if value.isascii() and value.isdigit() else default


def set_setting(session: Session, name: str, value: str) -> None:
    row = session.get(DeskSetting, name) or DeskSetting(name=name)
    row.value = value
    session.add(row)
    session.flush()


def desk_zone(session: Session) -> ZoneInfo:
    """The desk's time zone (setting ``time_zone``): UTC when unset or not a zone."""
    return zone_named(get_setting(session, TIME_ZONE_SETTING))


# -- users ------------------------------------------------------------------------------------


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(_("No user named {username!r}").format(username=username))
    return user


def list_users(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(col(User.username))).all()


def add_user(
    session: Session,
    *,
    actor: User | None,
    username: str,
    name: str,
    email: str,
    password: str,
    role: str,
    phone: str | None = None,
    teams: Sequence[str] = (),
) -> User:
    require_admin(actor)
    errors: dict[str, str] = {}
    username = username.strip()
    if not username or any(ch.isspace() for ch in username) or len(username) > 64:
        errors["username"] = _("must be 1-64 characters without spaces")
    elif (problem := text_problem(username)) is not None:
        errors["username"] = problem
    if not name.strip():
        errors["name"] = _("is required")
    elif len(name.strip()) > 200:
        errors["name"] = _("must be at most {n} characters").format(n=200)
    elif (problem := text_problem(name)) is not None:
        errors["name"] = problem
    from email_validator import EmailNotValidError, validate_email  # loads on use

    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        errors["email"] = _("not a valid email address ({exc})").format(exc=exc)
    if role not in Role.__members__:
        errors["role"] = must_be_one_of(Role)
    if not password:
        errors["password"] = _("is required")
    if phone:
        try:
            phone = normalise_phone(phone, get_setting(session, "phone_region"))
        except ValueError as exc:
            errors["phone"] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(_("User {username!r} already exists").format(username=username))
    team_rows = [get_team(session, team) for team in teams]
    user = User(
        username=username,
        name=name.strip(),
        email=email,
        phone=phone or None,
        role=role,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    for team in team_rows:
        _add_membership(session, user, team)
    return user


# -- teams ------------------------------------------------------------------------------------


def get_team(session: Session, name: str) -> Team:
    team = session.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        raise NotFound(_("No team named {name!r}").format(name=name))
    return team


def list_teams(session: Session) -> Sequence[Team]:
    return session.exec(select(Team).order_by(col(Team.name))).all()


def add_team(session: Session, *, actor: User | None, name: str) -> Team:
    require_admin(actor)
    name = clean_name(name, limit=100)
    if session.exec(select(Team).where(Team.name == name)).first() is not None:
        raise Conflict(_("Team {name!r} already exists").format(name=name))
    team = Team(name=name)
    session.add(team)
    session.flush()
    return team


def team_members(session: Session, team: Team) -> Sequence[User]:
    return session.exec(
        select(User)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.team_id == team.id)
        .order_by(col(User.username))
    ).all()


def user_teams(session: Session, user: User) -> Sequence[Team]:
    return session.exec(
        select(Team)
        .join(Membership, col(Membership.team_id) == col(Team.id))
        .where(Membership.user_id == user.id)
        .order_by(col(Team.name))
    ).all()


def is_member(session: Session, user: User, team_id: int | None) -> bool:
    return session.get(Membership, (user.id, team_id)) is not None


def add_member(session: Session, *, actor: User | None, username: str, team: str) -> None:
    require_admin(actor)
    _add_membership(session, get_user(session, username), get_team(session, team))


def _add_membership(session: Session, user: User, team: Team) -> None:
    if not is_member(session, user, team.id):
        assert user.id is not None and team.id is not None
        session.add(Membership(user_id=user.id, team_id=team.id))
        session.flush()


# -- queues -----------------------------------------------------------------------------------


def no_queue(name: str) -> NotFound:
    return NotFound(f"No queue named {name!r}")


def get_queue(session: Session, name: str) -> Queue:
    queue = session.exec(select(Queue).where(Queue.name == name)).first()
    if queue is None:
        raise no_queue(name)
    return queue


def list_queues(session: Session) -> Sequence[Queue]:
    return session.exec(select(Queue).order_by(col(Queue.name))).all()


def _check_queue_modes(ordering: str | None, assign: str | None) -> None:
    if ordering is not None and ordering not in QueueOrder.__members__:
        raise ValidationFailed({"order": must_be_one_of(QueueOrder)})
    if assign is not None and assign not in QueueAssign.__members__:
        raise ValidationFailed({"assign": must_be_one_of(QueueAssign)})


def add_queue(
    session: Session,
    *,
    actor: User | None,
    name: str,
    team: str,
    ordering: str = "oldest",
    assign: str = QueueAssign.pull,
) -> Queue:
    """A queue of ``team``: ``ordering`` oldest or priority; ``assign`` pull (by hand) or
    auto (``store.assign``)."""
    require_admin(actor)
    name = clean_name(name, limit=100)
    _check_queue_modes(ordering, assign)
    team_row = get_team(session, team)
    if session.exec(select(Queue).where(Queue.name == name)).first() is not None:
        raise Conflict(_("Queue {name!r} already exists").format(name=name))
    assert team_row.id is not None
    queue = Queue(name=name, team_id=team_row.id, ordering=ordering, assign=assign)
    session.add(queue)
    session.flush()
    return queue


def update_queue(
    session: Session,
    *,
    actor: User | None,
    name: str,
    ordering: str | None = None,
    assign: str | None = None,
) -> Queue:
    """Change a queue's order and/or how it hands out tickets (None: unchanged)."""
    require_admin(actor)
    _check_queue_modes(ordering, assign)
    queue = get_queue(session, name)
    if ordering is not None:
        queue.ordering = ordering
    if assign is not None:
        queue.assign = assign
    session.add(queue)
    session.flush()
    return queue


# -- statuses ---------------------------------------------------------------------------------


def ensure_builtin_statuses(session: Session) -> None:
    """Create the built-in statuses (new, open, escalated, resolved, closed) if missing."""
    for position, (name, category) in enumerate(BUILTIN_STATUSES.items()):
        if session.exec(select(Status).where(Status.name == name)).first() is None:
            session.add(Status(name=name, category=category, builtin=True, position=position))
    session.flush()


def get_status(session: Session, name: str) -> Status:
    status = session.exec(select(Status).where(Status.name == name)).first()
    if status is None:
        known = ", ".join(s.name for s in list_statuses(session))
        raise NotFound(
            _("No status named {name!r} (known: {known})").format(name=name, known=known)
        )
    return status


def list_statuses(session: Session) -> Sequence[Status]:
    return session.exec(select(Status).order_by(col(Status.position), col(Status.name))).all()


def add_status(session: Session, *, actor: User | None, name: str, category: str) -> Status:
    require_admin(actor)
    name = clean_name(name, limit=64)
    if category not in StatusCategory.__members__:
        raise ValidationFailed({"category": must_be_one_of(StatusCategory)})
    if session.exec(select(Status).where(Status.name == name)).first() is not None:
        raise Conflict(_("Status {name!r} already exists").format(name=name))
    last = session.exec(select(Status).order_by(col(Status.position).desc())).first()
    status = Status(name=name, category=category, position=(last.position + 1) if last else 0)
    session.add(status)
    session.flush()
    return status


@dataclass(frozen=True)
class FormChoices:
    """What a ticket form's lists offer: the statuses, and each team with its members."""

    statuses: list[str]
    members_by_team: dict[str, list[str]]
    names: dict[str, str] = field(default_factory=dict)
    """Each member's name by username (owner pickers show names)."""


def form_choices(session: Session) -> FormChoices:
    return FormChoices(
        statuses=[s.name for s in list_statuses(session)],
        members_by_team={
            t.name: [u.username for u in team_members(session, t)] for t in list_teams(session)
        },
        names=member_names(session),
    )


def member_names(session: Session) -> dict[str, str]:
    """Every active user's name by username (what an owner picker shows)."""
    rows = session.exec(select(User.username, User.name).where(col(User.active))).all()
    return {username: name for username, name in rows}
