"""The ticket list a page at a time: its filter, sort, pages, summary counts and saved views.
The other desk-wide screens' pages (kanban, stream, history, board) are in ``store.pages``.

Every function returns one bounded page (``limit`` rows) from one SELECT, never every ticket,
so the screens stay fast on a desk with 100,000 tickets. Filters are resolved against the
directory first (an unknown team, owner, status or priority is a ``DeskError``: one line).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import iterate
from sqlmodel import Session, col, select

from cxdesk.errors import DeskError, NotFound, ValidationFailed, must_be_one_of
from cxdesk.i18n import N_, _, ngettext
from cxdesk.search_fold import fold_query
from cxdesk.store import day_counts
from cxdesk.store.directory import get_status, get_team, get_user, list_statuses
from cxdesk.store.models import (
    PRIORITY_RANK,
    Priority,
    SavedView,
    StatusCategory,
    Team,
    Ticket,
    TicketTag,
    User,
    utcnow,
)
from cxdesk.store.sla_display import SlaTimes, running_due_expression, sla_times
from cxdesk.text import clean_name

DEFAULT_DAYS = 30
"""The ticket list shows tickets created in the last month unless told otherwise."""
PAGE_SIZE = 100
UNOWNED = "none"
"""The owner filter's value for tickets nobody owns."""

# -- the filter --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilter:
    """What the ticket list shows. Dates are local calendar days, both ends included.

    ``last_days`` (default 30) counts back from today and wins over ``created_from``; set it
    to None for an explicit range, or leave every date empty for all time.
    """

    last_days: int | None = DEFAULT_DAYS
    created_from: date | None = None
    created_to: date | None = None
    team: str | None = None
    owner: str | None = None
    status: str | None = None
    priority: str | None = None
    tag: str | None = None
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored in a saved view (dates as ISO strings, empty fields left out)."""
        stored: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if isinstance(value, date):
                value = value.isoformat()
            stored[name] = value
        return stored

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> TicketFilter:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in stored.items() if k in known}
        for name in ("created_from", "created_to"):
            if values.get(name):
                values[name] = parse_day(str(values[name]), name)
        return cls(**values)

    def describe(self) -> str:
        """One line for a summary or a saved-view list: ``last 30 days, team 360, ...``."""
        parts = []
        if self.last_days:
            days = self.last_days
            parts.append(ngettext("last {n} day", "last {n} days", days).format(n=days))
        elif self.created_from or self.created_to:
            parts.append(
                _("{start} to {end}").format(
                    start=self.created_from or "…", end=self.created_to or "…"
                )
            )
        else:
            parts.append(_("all dates"))
        for name, words in _FILTER_WORDS.items():
            value = getattr(self, name)
            if value:
                parts.append(_(words).format(value=value))
        return ", ".join(parts)

    def with_changes(self, **changes: Any) -> TicketFilter:
        return replace(self, **changes)


def parse_day(value: str, label: str = "date") -> date:
    """A ``YYYY-MM-DD`` day, or a one-line error naming the option."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise DeskError(
            _("{label}: {value!r} is not a date (YYYY-MM-DD)").format(label=label, value=value)
        ) from None


DATE_OPTION_LABELS = {"days": "days", "from": "from", "to": "to"}


def build_filter(
    *,
    base: TicketFilter | None = None,
    days: int | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    team: str | None = None,
    owner: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    tag: str | None = None,
    text: str | None = None,
    labels: Mapping[str, str] = DATE_OPTION_LABELS,
) -> TicketFilter:
    """The filter typed values describe, on top of ``base`` (a saved view) or the default;
    ``labels`` names the date options in error messages (``--days`` on the command line)."""
    flt = base or TicketFilter()
    if days is not None:
        if days < 0:
            raise DeskError(
                _("{label} must be 0 (all time) or more, not {days}").format(
                    label=labels["days"], days=days
                )
            )
        flt = flt.with_changes(last_days=days or None, created_from=None, created_to=None)
    if date_from is not None or date_to is not None:
        if days:
            raise DeskError(
                f"Give either {labels['days']} or {labels['from']}/{labels['to']}, not both"
            )
        flt = flt.with_changes(
            last_days=None,
            created_from=parse_day(date_from, labels["from"]) if date_from else None,
            created_to=parse_day(date_to, labels["to"]) if date_to else None,
        )
    changes = {"team": team, "owner": owner, "status": status, "priority": priority,
               "tag": tag, "text": text}  # fmt: skip
    return flt.with_changes(**{name: value for name, value in changes.items() if value is not None})


def _local_midnight_utc(day: date) -> datetime:
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def _conditions(session: Session, flt: TicketFilter, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter; names are checked against the directory."""
    return [*_date_conditions(flt, now), *_other_conditions(session, flt)]


def _date_conditions(flt: TicketFilter, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.last_days is not None and flt.last_days < 0:
        raise ValidationFailed({"days": _("must be 0 (all time) or more")})
    if flt.last_days:
        start_day = now.astimezone().date() - timedelta(days=flt.last_days)
        where.append(col(Ticket.created_at) >= _local_midnight_utc(start_day))
    else:
        if flt.created_from:
            where.append(col(Ticket.created_at) >= _local_midnight_utc(flt.created_from))
        if flt.created_to:
            end = _local_midnight_utc(flt.created_to + timedelta(days=1))
            where.append(col(Ticket.created_at) < end)
        if flt.created_from and flt.created_to and flt.created_from > flt.created_to:
            raise ValidationFailed(
                {
                    "from": _("{created_from} is after to {created_to}").format(
                        created_from=flt.created_from, created_to=flt.created_to
                    )
                }
            )
    return where


def _other_conditions(session: Session, flt: TicketFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flt.team:
        where.append(col(Ticket.team_id) == get_team(session, flt.team).id)
    if flt.owner == UNOWNED:
        where.append(col(Ticket.owner_id).is_(None))
    elif flt.owner:
        where.append(col(Ticket.owner_id) == get_user(session, flt.owner).id)
    if flt.status:
        where.append(col(Ticket.status) == get_status(session, flt.status).name)
    if flt.priority:
        if flt.priority not in Priority.__members__:
            raise ValidationFailed({"priority": must_be_one_of(Priority)})
        where.append(col(Ticket.priority) == flt.priority)
    if flt.tag:
        where.append(
            exists().where(
                col(TicketTag.ticket_id) == col(Ticket.id), col(TicketTag.tag) == flt.tag.strip()
            )
        )
    if flt.text and (needle := fold_query(flt.text)):
        # Case, accents and width folded both ways (cxdesk.search_fold); % and _ taken literally.
        where.append(col(Ticket.search_fold).contains(needle, autoescape=True))
    return where


# -- the ticket list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketRow:
    """One line of the ticket list (and of an export)."""

    id: int
    key: str
    response_id: int | None
    customer_name: str
    customer_email: str
    origin_team: str
    team: str
    owner: str | None
    priority: str
    status: str
    created_at: datetime
    customer_comment: str
    title: str
    updated_at: datetime
    sla: SlaTimes | None
    """The ticket's SLA columns (None: no policy): its state at any time (``SlaTimes.view``)."""


LIST_COLUMNS: dict[str, str] = {
    "key": N_("Key"),
    "customer_name": N_("Customer"),
    "status": N_("Status"),
    "sla": N_("SLA"),
    "priority": N_("Priority"),
    "owner": N_("Owner"),
    "team": N_("Team"),
    "created_at": N_("Reported on"),
    "origin_team": N_("Origin team"),
    "response_id": N_("Response"),
    "customer_email": N_("Customer email"),
    "customer_comment": N_("Customer comment"),
}
"""The list's columns in order: field -> heading (English, as exports write it; a screen shows
``_(heading)``). Each is a sort key too. Who, in what state and how urgent first: an 80-column
terminal shows the key, customer, status, SLA, priority."""
_FILTER_WORDS = {
    "team": N_("team {value}"),
    "owner": N_("owner {value}"),
    "status": N_("status {value}"),
    "priority": N_("priority {value}"),
    "tag": N_("tag {value}"),
    "text": N_("text {value}"),
}
"""How ``TicketFilter.describe`` words each filter field."""

_ORIGIN = aliased(Team, name="origin_team")
_CURRENT = aliased(Team, name="current_team")
_OWNER = aliased(User, name="owner_user")
_SORT_EXPRESSIONS: dict[str, Any] = {
    "key": col(Ticket.id),  # EXP-9 before EXP-10: the number, not the text
    "response_id": col(Ticket.response_id),
    "customer_name": col(Ticket.customer_name),
    "customer_email": col(Ticket.customer_email),
    "origin_team": col(_ORIGIN.name),
    "team": col(_CURRENT.name),
    "owner": col(_OWNER.username),
    "priority": case(PRIORITY_RANK, value=col(Ticket.priority), else_=len(PRIORITY_RANK)),
    "status": col(Ticket.status),
    "sla": running_due_expression(),  # the most urgent first; paused or without SLA last
    "created_at": col(Ticket.created_at),
    "customer_comment": col(Ticket.customer_comment),
}


@dataclass(frozen=True)
class Sort:
    """A list column and a direction; newest first by default."""

    column: str = "created_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.column not in _SORT_EXPRESSIONS:
            raise DeskError(
                _("Cannot sort by {column!r} (one of: {choices})").format(
                    column=self.column, choices=", ".join(_SORT_EXPRESSIONS)
                )
            )


def _list_statement(session: Session, flt: TicketFilter, now: datetime) -> Select:
    return (
        sa_select(
            col(Ticket.id),
            col(Ticket.key),
            col(Ticket.response_id),
            col(Ticket.customer_name),
            col(Ticket.customer_email),
            col(_ORIGIN.name),
            col(_CURRENT.name),
            col(_OWNER.username),
            col(Ticket.priority),
            col(Ticket.status),
            col(Ticket.created_at),
            col(Ticket.customer_comment),
            col(Ticket.title),
            col(Ticket.updated_at),
            *SlaTimes.columns(),
        )
        .join(_ORIGIN, col(_ORIGIN.id) == col(Ticket.origin_team_id))
        .join(_CURRENT, col(_CURRENT.id) == col(Ticket.team_id))
        .outerjoin(_OWNER, col(_OWNER.id) == col(Ticket.owner_id))
        .where(*_conditions(session, flt, now))
    )


_NULLABLE_SORTS = frozenset({"response_id", "owner", "sla"})


def _ordered(statement: Select, sort: Sort, *, backwards: bool = False) -> Select:
    """ORDER BY the column, then id; empty values last both ways on both databases (only
    where a column can be empty: NULLS LAST on created_at would stop PostgreSQL using its
    index for the default newest-first order). ``backwards``: the exact reverse of that order
    (empty values first), to read a page from the other end."""
    expression = _SORT_EXPRESSIONS[sort.column]
    tie = col(Ticket.id)
    descending = sort.descending != backwards
    ordered = expression.desc() if descending else expression.asc()
    if sort.column in _NULLABLE_SORTS:
        ordered = ordered.nulls_first() if backwards else ordered.nulls_last()
    return statement.order_by(ordered, tie.desc() if descending else tie.asc())


@dataclass(frozen=True)
class PageRead:
    """How to read rows ``offset`` to ``offset + limit`` of an ordered list of ``total`` rows
    from whichever end is nearer: an OFFSET walks (and joins) every row it skips, so the last
    page of 100,000 tickets is read as the first page of the reversed order, then reversed."""

    backwards: bool
    offset: int
    limit: int

    @classmethod
    def of(cls, offset: int, limit: int, total: int | None) -> PageRead:
        offset, limit = max(0, offset), max(0, limit)
        if total is None or offset <= total - offset - limit:
            return cls(False, offset, limit)
        from_end = max(0, total - offset - limit)
        return cls(True, from_end, max(0, total - offset - from_end))

    def rows(self, rows: Sequence[Any]) -> list[Any]:
        """The rows read, in the list's order."""
        return list(reversed(rows)) if self.backwards else list(rows)


_PLAIN = len(fields(TicketRow)) - 1


def _row(values: Sequence[Any]) -> TicketRow:
    return TicketRow(*values[:_PLAIN], *[sla_times(values[_PLAIN:])])


def ticket_page(
    session: Session,
    flt: TicketFilter,
    *,
    sort: Sort = Sort(),
    offset: int = 0,
    limit: int = PAGE_SIZE,
    now: datetime | None = None,
    total: int | None = None,
) -> list[TicketRow]:
    """One page of the filtered, sorted list: at most ``limit`` rows, in one SELECT.

    ``total``: how many tickets the filter matches (the summary's total, read just before):
    a page past the middle is then read from the other end (``PageRead``)."""
    read = PageRead.of(offset, limit, total)
    listed = _list_statement(session, flt, now or utcnow())
    statement = _ordered(listed, sort, backwards=read.backwards)
    rows = session.execute(statement.offset(read.offset).limit(read.limit)).all()
    return [_row(row) for row in read.rows(rows)]


def iter_tickets(
    session: Session,
    flt: TicketFilter,
    *,
    sort: Sort = Sort(),
    batch: int = 500,
    now: datetime | None = None,
) -> Iterator[list[TicketRow]]:
    """The whole filtered list in batches, streamed from the database (a server-side cursor
    on PostgreSQL), so an export of 100,000 tickets never holds them all at once. The filter
    is checked at the call, before the first batch is asked for."""
    statement = _ordered(_list_statement(session, flt, now or utcnow()), sort)
    return _batches(session, statement.execution_options(yield_per=batch))


def _batches(session: Session, statement: Select) -> Iterator[list[TicketRow]]:
    for partition in session.execute(statement).partitions():
        yield [_row(row) for row in partition]


@dataclass(frozen=True)
class Summary:
    """Counts by status for a filter: the list's summary line."""

    new: int = 0
    open: int = 0
    escalated: int = 0
    resolved: int = 0
    total: int = 0

    def line(self) -> str:
        return _(
            "New {new} · Open {open} · Escalated {escalated} · Resolved {resolved} · Total {total}"
        ).format(
            new=self.new,
            open=self.open,
            escalated=self.escalated,
            resolved=self.resolved,
            total=self.total,
        )


def ticket_summary(session: Session, flt: TicketFilter, *, now: datetime | None = None) -> Summary:
    """New, open (every other open-like status), escalated, resolved (and closed), total.

    In a read session, a range of at most ``REMEMBERED_DAYS`` whole past days is counted per
    day once and remembered until one of the day's tickets changes (``store.day_counts``);
    today and after are counted each time. Other reads count every matching ticket."""
    now = now or utcnow()
    dated, others = _date_conditions(flt, now), _other_conditions(session, flt)
    span = _span(flt, now)
    if span is None or not day_counts.can_remember(session):
        by_status = Counter(dict(day_counts.grouped(session, [*dated, *others])))
    else:
        days, rest = span
        undated = flt.with_changes(last_days=None, created_from=None, created_to=None)
        key = (undated, tuple(_bound_values(others)))
        by_status = day_counts.counts(session, others, key=key, days=days, rest=rest)
    categories = {s.name: s.category for s in list_statuses(session)}
    counts = {"new": 0, "open": 0, "escalated": 0, "resolved": 0}
    for status, count in by_status.items():
        if status in ("new", "escalated"):
            counts[status] += count
        elif categories.get(status) == StatusCategory.resolved:
            counts["resolved"] += count
        else:
            counts["open"] += count
    return Summary(**counts, total=sum(by_status.values()))


REMEMBERED_DAYS = 400
"""The longest range of past days the summary remembers counts for (a longer one, or all
dates, is counted whole)."""


def _span(
    flt: TicketFilter, now: datetime
) -> tuple[list[day_counts.Day], tuple[datetime, datetime | None] | None] | None:
    """The filter's dates as whole past local days and the rest (today on, counted live), or
    None if it has no first day or too many."""
    today = now.astimezone().date()
    first: date | None
    if flt.last_days:
        first, last = today - timedelta(days=flt.last_days), None
    else:
        first, last = flt.created_from, flt.created_to
    if first is None:
        return None
    past_end = today if last is None else min(today, last + timedelta(days=1))
    if (past_end - first).days > REMEMBERED_DAYS:
        return None
    starts = [first + timedelta(days=n) for n in range((past_end - first).days + 1)]
    bounds = [_local_midnight_utc(day) for day in starts]
    days = list(zip(bounds, bounds[1:], strict=False))
    if last is not None and last < today:
        return days, None
    start = _local_midnight_utc(max(first, today))
    return days, (start, None if last is None else _local_midnight_utc(last + timedelta(days=1)))


FAR_PAST = datetime(1, 1, 1, tzinfo=UTC)
"""The start of the first bucket of ``all_dates``: before any ticket."""


def all_dates(now: datetime) -> tuple[list[day_counts.Day], tuple[datetime, None]]:
    """Every date as past buckets ``day_counts`` remembers and the rest (today on, counted
    live): one bucket before last year, its months and this year's up to last month, then
    each day since. At most ~86 buckets however old the desk, a ticket's change recounts one
    bucket, and only a new day (or month, or year) is counted again when the date moves."""
    today = now.astimezone().date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    starts, month = [], date(today.year - 1, 1, 1)
    while month < last_month:
        starts.append(month)
        month = (month + timedelta(days=31)).replace(day=1)
    starts += [last_month + timedelta(days=n) for n in range((today - last_month).days + 1)]
    bounds = [FAR_PAST, *(_local_midnight_utc(start) for start in starts)]
    return list(zip(bounds, bounds[1:], strict=False)), (bounds[-1], None)


def _bound_values(conditions: Sequence[ColumnElement[bool]]) -> Iterator[Any]:
    """The values the conditions compare with (a team's id...), in order: with the filter,
    what its remembered counts are kept under."""
    for condition in conditions:
        for element in iterate(condition):
            if isinstance(element, BindParameter):
                yield element.value


# -- saved views -------------------------------------------------------------------------------


def save_view(session: Session, *, actor: User, name: str, flt: TicketFilter) -> SavedView:
    """Store ``flt`` under ``name`` for ``actor``; saving a name again replaces its filter."""
    name = " ".join(clean_name(name, limit=100).split())
    _conditions(session, flt, utcnow())  # refuse a filter naming things that do not exist
    view = session.exec(
        select(SavedView).where(SavedView.owner_id == actor.id, SavedView.name == name)
    ).first()
    if view is None:
        view = SavedView(name=name, owner_id=actor.id)
    view.filters = flt.to_json()
    session.add(view)
    session.flush()
    return view


def list_views(session: Session, *, actor: User) -> list[SavedView]:
    """The actor's views, then the desk's shared ones (no owner, e.g. a campaign's)."""
    statement = select(SavedView).where(
        or_(col(SavedView.owner_id) == actor.id, col(SavedView.owner_id).is_(None))
    )
    views = session.exec(statement.order_by(col(SavedView.name), col(SavedView.id))).all()
    return sorted(views, key=lambda v: (v.owner_id is None, v.name.lower()))


def get_view(session: Session, *, actor: User, name: str) -> TicketFilter:
    """The filter saved as ``name`` (the actor's own first, then a shared one)."""
    for view in list_views(session, actor=actor):
        if view.name == " ".join(name.split()):
            return TicketFilter.from_json(view.filters)
    raise NotFound(_("No saved view named {name!r}").format(name=name))


def delete_view(session: Session, *, actor: User, name: str) -> None:
    view = session.exec(
        select(SavedView).where(SavedView.owner_id == actor.id, SavedView.name == name.strip())
    ).first()
    if view is None:
        raise NotFound(_("No saved view named {name!r}").format(name=name))
    session.delete(view)
    session.flush()
