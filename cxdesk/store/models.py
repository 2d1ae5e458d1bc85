"""The desk's tables (SQLModel). Names and columns here are the schema Alembic migrates.

Times are timezone-aware UTC (``utcnow()``): SQLModel stores them as ``timestamptz`` on
PostgreSQL and as UTC text on SQLite, and returns aware UTC on both. Screens convert to the
local zone when they draw them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.orm import InstanceState
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel
from sqlmodel.main import SQLModelConfig

from cxdesk.search_fold import fold_fields

# Every constraint and index gets a predictable name, the same on SQLite and PostgreSQL, so a
# later revision can drop or change it by name (batch migrations on SQLite need the names).
# Set before any table class below is defined: names are given when a table is built.
# Explicitly named indexes (``ix_ticket_pull``...) keep their names.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


class DeskModel(SQLModel):
    """Every table's base: its pydantic validator and serializer are built on first use, not
    at import (``defer_build``). A table model does not validate on ``__init__`` (SQLModel
    builds table rows without pydantic validation) and cxdesk never calls ``model_validate``
    or ``model_dump`` on one, so the ~37 schemas (most of this module's import time) are
    never built at all in a desk run; where something does ask for one, pydantic builds it
    then, the same schema."""

    model_config = SQLModelConfig(defer_build=True)


_CLOCK: ContextVar[Callable[[], datetime] | None] = ContextVar("cxdesk_clock", default=None)


def utcnow() -> datetime:
    """Now, as aware UTC: the one clock every row uses (``simulated_clock`` may stand in)."""
    clock = _CLOCK.get()
    return datetime.now(UTC) if clock is None else clock()


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC: a time SQLite handed back without its zone is UTC."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


@contextmanager
def simulated_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Inside the block, ``utcnow()`` reads ``clock`` (aware UTC): a simulation drives the real
    store operations through a day in seconds (``benchmarks/estimate.py``). A context
    variable, so other threads and tasks keep the real clock and nothing outlives the block."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)


class Role(StrEnum):
    admin = "admin"
    expert = "expert"
    volunteer = "volunteer"


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


PRIORITY_RANK = {Priority.critical: 0, Priority.high: 1, Priority.medium: 2, Priority.low: 3}


class StatusCategory(StrEnum):
    """What a status means to queues, dashboards and workflows."""

    open = "open"
    resolved = "resolved"
    paused = "paused"
    """Waiting on someone else (e.g. "Waiting on customer"): still unresolved, but its SLA
    clocks stop while it stays here (``store.sla``)."""


class Source(StrEnum):
    checkin = "checkin"
    survey = "survey"
    manual = "manual"
    campaign = "campaign"
    email = "email"
    """Opened by a customer's email (``cxdesk mail import|fetch``)."""
    sms = "sms"
    """Opened by a customer's text message (Twilio's inbound webhook)."""


class Channel(StrEnum):
    in_person = "in_person"
    phone = "phone"
    chat = "chat"
    email = "email"
    conference = "conference"
    sms = "sms"


class QueueOrder(StrEnum):
    oldest = "oldest"
    priority = "priority"


class QueueAssign(StrEnum):
    """How a queue's tickets reach experts: pulled by hand, or assigned by the desk
    (``store.assign``) to the least-loaded available member of its team."""

    pull = "pull"
    auto = "auto"


class PresenceState(StrEnum):
    available = "available"
    away = "away"
    break_ = "break"


# Built-in statuses: name -> category. Custom ones are added by an admin.
BUILTIN_STATUSES: dict[str, StatusCategory] = {
    "new": StatusCategory.open,
    "open": StatusCategory.open,
    "escalated": StatusCategory.open,
    "resolved": StatusCategory.resolved,
    "closed": StatusCategory.resolved,
}


class DeskSetting(DeskModel, table=True):
    """Desk-wide settings every terminal must agree on (ticket key prefix, phone region)."""

    __tablename__ = "desk_setting"

    name: str = Field(primary_key=True, max_length=64)
    value: str = ""


class DeskRevision(SQLModel, table=True):
    """One row: the desk's random name and a counter the definition tables' triggers move on
    every change (migration 0024); ``store.definitions`` caches under both."""

    __tablename__ = "desk_revision"

    id: int | None = Field(default=None, primary_key=True)
    desk: str = Field(max_length=32)
    revision: int = Field(sa_type=BigInteger)


# -- people and teams ------------------------------------------------------------------------


class User(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=200)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    max_open_tickets: int | None = None
    """How many open tickets this expert may hold before a pull is refused (``store.caps``):
    None follows the desk's ``max_open_tickets`` setting; 0 is no cap for this user."""
    language: str | None = Field(default=None, max_length=8)
    """The language this user's TUI and CLI speak (``cxdesk.i18n.LANGUAGES``); None follows
    the desk's ``language`` setting."""


class Team(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class Membership(DeskModel, table=True):
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    team_id: int = Field(foreign_key="team.id", primary_key=True)


class Status(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    category: str = Field(max_length=16)
    builtin: bool = False
    position: int = 0


class Queue(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    team_id: int = Field(foreign_key="team.id")
    ordering: str = Field(default=QueueOrder.oldest, max_length=16)
    enabled_for_all: bool = True
    assign: str = Field(
        default=QueueAssign.pull, max_length=8, sa_column_kwargs={"server_default": "pull"}
    )


class Presence(DeskModel, table=True):
    """An expert's presence (``store.presence``): the state they set, since when, and the last
    heartbeat of the desk (TUI) that set it; None: set from the CLI, held until changed."""

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    state: str = Field(default=PresenceState.away, max_length=16)
    since: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime | None = None


# -- surveys ---------------------------------------------------------------------------------


class Survey(DeskModel, table=True):
    """A list of typed questions; ``questions`` is a list of dicts (see store.surveys)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    title: str = Field(max_length=200)
    kind: str = Field(default="checkin", max_length=16)
    questions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    languages: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The title in other languages: ``{"it": {"title": ...}}`` (questions carry their own)."""


class SurveyResponse(DeskModel, table=True):
    __tablename__ = "survey_response"
    __table_args__ = (
        # A ticket's survey (its CSAT) is answered once; responses without a ticket (check-in,
        # NPS) are NULL there and never collide.
        Index("ix_survey_response_once", "survey_id", "ticket_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id", index=True)
    submitted_by_id: int | None = Field(default=None, foreign_key="user.id")
    expert_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    """The expert the answer is about (a CSAT's ticket owner when its link was sent)."""
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    language: str | None = Field(default=None, max_length=8)
    """The customer's language chosen at check-in; its tickets' ``customer_language``."""
    # ticket.response_id points back here: use_alter breaks the cycle, so create_all/drop_all
    # (and table sorting) add this foreign key after both tables exist (inline on SQLite).
    ticket_id: int | None = Field(
        default=None,
        index=True,
        sa_column_args=[ForeignKey("ticket.id", use_alter=True)],
    )
    created_at: datetime = Field(default_factory=utcnow)


# -- tickets ---------------------------------------------------------------------------------


TICKET_VERSION = Column("version", Integer, nullable=False, server_default=text("1"))
"""Bumped by every write of a ticket row (optimistic concurrency, issue 16): by the ORM once
per transaction (``_bump_ticket_versions``; ``version_id_col`` makes each UPDATE say
``WHERE version = <the one read>``, StaleDataError otherwise), and by every Core UPDATE with
``version = version + 1`` (``store.ticket_versions.NEXT_VERSION``)."""


class Ticket(DeskModel, table=True):
    # The version is set by _bump_ticket_versions, not per flush: one update flushes the
    # ticket several times (fields, status, comment) and is still one change.
    __mapper_args__ = {"version_id_col": TICKET_VERSION, "version_id_generator": False}
    __table_args__ = (
        # Waiting tickets only (unowned): what a pull and the queue counts read. A plain
        # (team, owner, created) index cannot serve "owner IS NULL ORDER BY created" on
        # PostgreSQL, which then scanned a team's whole history on every pull.
        Index(
            "ix_ticket_waiting",
            "team_id",
            "queue_band",
            "created_at",
            "id",
            postgresql_where=text("owner_id IS NULL"),
            sqlite_where=text("owner_id IS NULL"),
        ),
        Index("ix_ticket_created", "created_at"),
        # The ticket list (issue 5, migrations 0004-0005): filtered by team (and status, and
        # priority) newest first, and its counts by status over a date range without reading
        # the tickets.
        Index("ix_ticket_team_status", "team_id", "status", "created_at", "priority"),
        Index("ix_ticket_created_status", "created_at", "status"),
        # A customer's tickets by phone, newest first: where their text message goes
        # (store.sms_inbound) and their other tickets (store.conversation.customer_history),
        # without reading every ticket (migration 0012).
        Index("ix_ticket_customer_phone", "customer_phone", "created_at"),
        # The customer's other tickets by email in any case (migration 0013).
        Index("ix_ticket_customer_email", func.lower(text("customer_email"))),
        # Who owns or submitted it, in history's order (newest or oldest first): "my tickets"
        # reads a page of each, not all of them sorted (migration 0025, in place of the
        # single-column indexes: no more index to write).
        Index("ix_ticket_owner_created", "owner_id", "created_at", "id"),
        Index("ix_ticket_requester_created", "requester_id", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, unique=True, index=True, max_length=32)
    title: str = Field(max_length=300)
    status: str = Field(foreign_key="status.name", max_length=64, index=True)
    priority: str = Field(default=Priority.medium, max_length=16)
    origin_team_id: int = Field(foreign_key="team.id")
    team_id: int = Field(foreign_key="team.id")
    owner_id: int | None = Field(default=None, foreign_key="user.id")
    requester_id: int | None = Field(default=None, foreign_key="user.id")
    customer_name: str = Field(default="", max_length=200)
    customer_email: str = Field(default="", max_length=320)
    customer_phone: str = Field(default="", max_length=32)
    customer_language: str | None = Field(default=None, max_length=8)
    """The language the customer is written to in (SMS, email, survey page); None: the desk's."""
    customer_comment: str = ""
    source: str = Field(default=Source.manual, max_length=16)
    channel: str = Field(default=Channel.in_person, max_length=16)
    response_id: int | None = Field(default=None, foreign_key="survey_response.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    estimated_resolution: date | None = None
    feedback_rating: int | None = None
    feedback_comment: str | None = None
    feedback_at: datetime | None = None
    pulled_from: str | None = Field(default=None, max_length=100)
    first_response_at: datetime | None = None
    """When an expert first replied to the customer (a reply, not an internal note)."""
    follows_id: int | None = Field(default=None, foreign_key="ticket.id")
    """The earlier ticket this one continues: a customer wrote again after it was closed."""
    """The queue this ticket was last pulled from. Only a pull sets it: the database trigger
    ``ticket_pulled`` (migration 0006) logs the pull for any UPDATE that sets this column."""
    recalls: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """How many times the customer was called back after not showing up (store.noshow)."""
    queue_band: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    """0: put back at the head of its queue (a no-show recall), 1: in line. A queue hands out
    band 0 first (``store.pull.queue_order``; ``ix_ticket_waiting`` leads with it)."""
    near_front_at: datetime | None = None
    """When the customer was told they are nearly next (``engine.near_front``): once."""
    # Service levels (``store.sla``, migration 0017): the policy that applied when the ticket
    # was created (or its team or priority changed) and each target's due and warning times,
    # in desk hours; the warning time is worked out with the due time, so that the state of a
    # ticket needs no calendar (``store.sla.sla_view``). Not indexed: the pull writes
    # ``first_responded_at``, and every index on ``ticket`` is written by every pull.
    sla_policy_id: int | None = None
    first_response_due_at: datetime | None = None
    first_response_warn_at: datetime | None = None
    first_responded_at: datetime | None = None
    """The first response the SLA counts: the first pull or the first reply, whichever came
    first (``first_response_at`` is the first reply only)."""
    next_response_since: datetime | None = None
    """When the customer message that started the current next-response clock came in."""
    next_response_due_at: datetime | None = None
    next_response_warn_at: datetime | None = None
    next_responded_at: datetime | None = None
    resolution_due_at: datetime | None = None
    resolution_warn_at: datetime | None = None
    sla_paused_at: datetime | None = None
    """Set while the ticket's status is in the ``paused`` category: its clocks are stopped."""
    version: int = Field(default=1, sa_column=TICKET_VERSION)
    """Which write of the ticket this is (``TICKET_VERSION``): ``ticket update --if-version``."""
    search_fold: str = Field(default="", sa_column_kwargs={"server_default": text("''")})
    """The searched fields (key, title, customer name, email and comment) folded for search
    (``search_fold.fold_fields``), written by ``_fold_for_search`` on every ORM insert and
    update: the ticket list's search compares the folded query with it."""


_BUMPED = "cxdesk_bumped_tickets"


@event.listens_for(OrmSession, "before_flush")
def _bump_ticket_versions(session: OrmSession, _context: object, _instances: object) -> None:
    """Each ticket changed in this transaction gets the next version once (new ones are 1)."""
    bumped: set[InstanceState[Any]] = session.info.setdefault(_BUMPED, set())
    bumped.update(inspect(obj) for obj in session.new if isinstance(obj, Ticket))
    for obj in session.dirty:
        if (
            isinstance(obj, Ticket)
            and (state := inspect(obj)) not in bumped
            and session.is_modified(obj, include_collections=False)
        ):
            obj.version += 1
            bumped.add(state)


def count_as_new(session: OrmSession, ticket: Ticket) -> None:
    """``ticket``, written by a Core INSERT in this transaction, is at its first version as a
    new one added to the session would be: its later changes in the transaction keep it."""
    session.info.setdefault(_BUMPED, set()).add(inspect(ticket))


SEARCHED_FIELDS = ("key", "title", "customer_name", "customer_email", "customer_comment")
"""The ticket's fields the list's search looks in, folded into ``Ticket.search_fold``."""


@event.listens_for(Ticket, "before_insert")
@event.listens_for(Ticket, "before_update")
def _fold_for_search(_mapper: object, _connection: object, ticket: Ticket) -> None:
    """Keep ``search_fold`` right whenever a searched field is written through the ORM (the
    Core updates of the pull, the assignment and the queue never write these fields)."""
    state = inspect(ticket)
    if state.key is None or any(
        state.attrs[name].history.has_changes() for name in SEARCHED_FIELDS
    ):
        fold_for_search(ticket)


def fold_for_search(ticket: Ticket) -> None:
    """Set ``search_fold`` from the searched fields."""
    ticket.search_fold = fold_fields(*(getattr(ticket, name) for name in SEARCHED_FIELDS))


@event.listens_for(OrmSession, "after_commit")
def _forget_bumped(session: OrmSession) -> None:
    session.info.pop(_BUMPED, None)


@event.listens_for(OrmSession, "after_soft_rollback")
def _forget_bumped_on_rollback(session: OrmSession, _previous: object) -> None:
    """A savepoint rolled back took its bumps with it: bump again (at worst one extra)."""
    session.info.pop(_BUMPED, None)


class TicketViewer(DeskModel, table=True):
    """Who has a ticket open right now, per terminal (``store.ticket_presence``): each ticket
    screen writes its row every second; a row whose heartbeat is older than a few seconds is
    someone who left (ignored, then deleted)."""

    __tablename__ = "ticket_viewer"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    terminal: str = Field(primary_key=True, max_length=64)
    """One ticket screen (a random id): two terminals of one user are two rows."""
    user_id: int = Field(foreign_key="user.id")
    mode: str = Field(default="viewing", max_length=16)
    """``viewing``, or ``editing`` while a change, note or reply dialog is open."""
    heartbeat_at: datetime = Field(default_factory=utcnow)


class TicketData(DeskModel, table=True):
    """Ordered named values copied onto a ticket (Firstname, Lastname, Email...)."""

    __tablename__ = "ticket_data"
    __table_args__ = (UniqueConstraint("ticket_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    position: int
    name: str = Field(max_length=100)
    value: str = ""


class TicketTag(DeskModel, table=True):
    __tablename__ = "ticket_tag"

    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    tag: str = Field(primary_key=True, max_length=100, index=True)


class Event(DeskModel, table=True):
    """The activity log and the workflow engine's trigger: who did what, when, from -> to.

    Indexed by ticket only (the timeline): every index here is written by every desk
    operation, a pull twice (migration 0007)."""

    __table_args__ = (Index("ix_event_ticket", "ticket_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    response_id: int | None = Field(default=None, foreign_key="survey_response.id")
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    field_name: str | None = Field(default=None, max_length=64)
    from_value: str | None = None
    to_value: str | None = None
    detail: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    dispatched_at: datetime | None = None
    """When the workflow engine finished with this event; NULL means still to dispatch."""


class CommentKind(StrEnum):
    """Who a comment is for: the desk only, the customer, or from the customer."""

    note = "note"
    """Internal: never leaves the desk."""
    reply = "reply"
    """Sent to the customer (an outbox row with this ``comment_id`` carries it)."""
    customer = "customer"
    """Received from the customer (email or SMS); ``sender`` says from where."""


class Comment(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="user.id")
    body: str
    created_at: datetime = Field(default_factory=utcnow)
    kind: str = Field(
        default=CommentKind.note, max_length=16, sa_column_kwargs={"server_default": "note"}
    )
    channel: str | None = Field(default=None, max_length=8)
    """email or sms, for replies and customer messages; None for notes."""
    sender: str | None = Field(default=None, max_length=320)
    """A customer message's sender (email address or phone number)."""


class Attachment(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comment.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# -- automation ------------------------------------------------------------------------------


class Workflow(DeskModel, table=True):
    """Event -> conditions -> ordered tasks, as data (see cxdesk.engine).

    Time-based ones (``engine.scheduled``): a ``schedule`` (its ``event`` is then
    ``"schedule"``, which no event is), or an event with ``delay_minutes``: the tasks run
    that long after the event, if the conditions still hold then."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    event: str = Field(max_length=64, index=True)
    survey_name: str | None = Field(default=None, max_length=100)
    enabled: bool = True
    conditions: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    tasks: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    schedule: str | None = Field(default=None, max_length=100)
    """Cron's five fields or a friendly form (``engine.schedule``), in the desk's zone."""
    schedule_since: datetime | None = None
    """When the schedule was set: no run before it is caught up."""
    delay_minutes: int | None = None
    """Minutes after its event the tasks run, if the conditions still hold (None: at once)."""


class WorkflowOccurrence(DeskModel, table=True):
    """One run of a time-based workflow: a scheduled instant or a delayed event's due time.

    The unique (workflow, key) makes it once whichever worker gets there first: a schedule's
    occurrence is claimed by inserting it (the key is its instant), a delayed one (the key
    is its event) by setting ``ran_at`` where it is NULL; its tasks commit with that mark."""

    __tablename__ = "workflow_occurrence"
    __table_args__ = (
        UniqueConstraint("workflow_id", "key"),
        # The delayed ones still to run, by due time: what every worker pass looks at.
        Index(
            "ix_workflow_occurrence_due",
            "due_at",
            postgresql_where=text("ran_at IS NULL"),
            sqlite_where=text("ran_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id")
    key: str = Field(max_length=64)
    due_at: datetime
    event_id: int | None = Field(default=None, foreign_key="event.id")
    """The event a delayed occurrence waits after (None for a schedule's)."""
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    ran_at: datetime | None = None
    matched: bool = False
    """Its conditions held when it ran, so its tasks ran."""


class SlaCalendar(DeskModel, table=True):
    """Desk hours: a time zone, weekly hours and dated exceptions (``engine.sla_clock``).

    ``weekly`` maps a weekday (``mon``...``sun``) to its opening hours, ``[["08:00",
    "18:00"], ...]`` (a day missing or empty: closed); ``exceptions`` is a list of
    ``{"date": "2026-12-08", "name": "...", "hours": [...]}`` (empty hours: closed that day)."""

    __tablename__ = "sla_calendar"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    time_zone: str = Field(default="UTC", max_length=64)
    weekly: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    exceptions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))


class SlaPolicy(DeskModel, table=True):
    """Targets in desk minutes for the tickets of a team (None: any team) and priority (None:
    any); the first enabled policy by ``position`` that matches a ticket applies to it. A
    target left None is not measured; no calendar: the clock runs around the clock."""

    __tablename__ = "sla_policy"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    priority: str | None = Field(default=None, max_length=16)
    calendar_id: int | None = Field(default=None, foreign_key="sla_calendar.id")
    first_response_minutes: int | None = None
    next_response_minutes: int | None = None
    resolution_minutes: int | None = None
    warn_percent: int = 75
    """The share of a target after which the ticket is in warning (``sla.warning``)."""
    position: int = 0
    enabled: bool = True


class SlaAlert(DeskModel, table=True):
    """An ``sla.warning`` or ``sla.breached`` raised for one ticket's target: the unique key
    (ticket, target, kind, since) is what makes it once, whichever worker gets there first.
    ``since`` is when the target's clock started (the ticket's creation; for the next response,
    the customer message's ``next_response_since``)."""

    __tablename__ = "sla_alert"
    __table_args__ = (UniqueConstraint("ticket_id", "target", "kind", "since"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    target: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    since: datetime
    due_at: datetime
    event_id: int | None = Field(default=None, foreign_key="event.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Macro(DeskModel, table=True):
    """Named actions an expert applies to one ticket in one write (``engine.macros``): set
    fields, an internal note, a reply to the customer; for one team, or shared (no team)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    actions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class WorkflowRun(DeskModel, table=True):
    """Which workflow ran for which event: a workflow never runs twice for one event."""

    __tablename__ = "workflow_run"
    __table_args__ = (UniqueConstraint("workflow_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: int = Field(foreign_key="workflow.id")
    event_id: int = Field(foreign_key="event.id", index=True)
    matched: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class TicketTemplate(DeskModel, table=True):
    __tablename__ = "ticket_template"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class OutboxMessage(DeskModel, table=True):
    """An email or SMS to deliver, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        # "At most one automatic message per address per period" reads by recipient.
        Index("ix_outbox_to_created", "to_addr", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=8)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id")
    workflow_id: int | None = Field(default=None, foreign_key="workflow.id")
    to_addr: str = Field(max_length=320)
    from_addr: str | None = Field(default=None, max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    subject: str | None = None
    body: str = ""
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    due_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=32)
    """Which claim holds the row (``outbox.claim_due``): a renewed lease keeps its token."""
    sending_at: datetime | None = None
    """When a deliverer committed that it was about to send the row; set on a row not yet
    sent, the outcome of that attempt is unknown (the deliverer died before its result)."""
    last_error: str | None = None
    provider_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # What the message was written for (``cxdesk.engine.staleness``): its ticket's status,
    # owner and team when it was queued (``written_status`` NULL: no ticket, or queued before
    # migration 0008), and when it stops being worth sending.
    written_status: str | None = Field(default=None, max_length=64)
    written_owner_id: int | None = None
    written_team_id: int | None = None
    valid_until: datetime | None = None
    comment_id: int | None = Field(default=None, foreign_key="comment.id", index=True)
    """The reply this message carries; None for automatic messages (workflows, alerts)."""
    thread_refs: str | None = None
    """Message-IDs of the conversation so far, oldest first, space-separated: an email reply's
    References (the last one is its In-Reply-To)."""


class InboundMessage(DeskModel, table=True):
    """One message a customer (or a mail system) sent the desk, handled exactly once.

    ``message_id`` is the email's Message-ID (or a digest of the raw message when it has none)
    or the Twilio MessageSid: a second import or fetch of the same message finds this row and
    changes nothing. ``outcome`` says what was done (``ticket_id``, ``comment_id`` where).
    """

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, max_length=512)
    channel: str = Field(max_length=8)
    sender: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=300)
    received_at: datetime = Field(default_factory=utcnow)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    comment_id: int | None = Field(default=None, foreign_key="comment.id")
    outcome: str = Field(max_length=32)
    detail: str | None = None
    may_answer: bool = True
    """False for auto-replies, bounces, lists and bulk mail (RFC 3834): nothing automatic may
    answer this message (workflow emails and SMS to its sender are skipped)."""
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """The message as received, cut at the desk's cap, for audit."""
    raw_truncated: bool = False


class AddressFlag(DeskModel, table=True):
    """An address the desk must treat with care: an email that bounced, a number that opted out
    of SMS (``kind`` ``bounced`` or ``opted_out``)."""

    __tablename__ = "address_flag"

    channel: str = Field(primary_key=True, max_length=8)
    address: str = Field(primary_key=True, max_length=320)
    kind: str = Field(primary_key=True, max_length=16)
    reason: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class EscalationRule(DeskModel, table=True):
    __tablename__ = "escalation_rule"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    survey_name: str | None = Field(default=None, max_length=100)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    after_minutes: int
    recipient_user_id: int | None = Field(default=None, foreign_key="user.id")
    recipient_team_id: int | None = Field(default=None, foreign_key="team.id")
    enabled: bool = True


# -- customers and views ---------------------------------------------------------------------


class Contact(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(unique=True, index=True, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=8)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class Campaign(DeskModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=100)
    subject: str = Field(max_length=300)
    description: str = ""
    status: str = Field(default="new", max_length=64)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    assignee_id: int | None = Field(default=None, foreign_key="user.id")
    filters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class SavedView(DeskModel, table=True):
    __tablename__ = "saved_view"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    owner_id: int | None = Field(default=None, foreign_key="user.id")
    filters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


# -- proof of identity (logins, sessions, API tokens) ----------------------------------------


class LoginSession(DeskModel, table=True):
    """A ``cxdesk login``: the secret lives in the user's session file, its SHA-256 here."""

    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    secret_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class ApiToken(DeskModel, table=True):
    """A named API token (``CXDESK_TOKEN``), shown once; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    user_id: int = Field(foreign_key="user.id", index=True)
    secret_hash: str = Field(unique=True, max_length=64)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class LoginFailure(DeskModel, table=True):
    """Failed password checks of one username from one source (an OS account on a machine):
    the next attempt is refused until ``locked_until``, which grows with ``failures``."""

    __tablename__ = "login_failure"

    username: str = Field(primary_key=True, max_length=64)
    source: str = Field(primary_key=True, max_length=300)
    failures: int = 0
    locked_until: datetime = Field(default_factory=utcnow)
