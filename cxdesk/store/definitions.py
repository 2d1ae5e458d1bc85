"""The desk's definitions, cached: settings, teams, statuses, surveys, workflows, templates.

A check-in reads them all, and they hardly ever change. They are read from the database once
and kept per database (the engine's pool) under the desk's revision (migration 0024: a
trigger on every definition table moves it, whoever writes). Each transaction reads the
revision once (one primary-key read) and uses the copy while it matches; any change by anyone
moves the revision, and the next transaction reads the definitions again. A session that
changes a definition itself drops its copy at the flush (``_forget_on_change``), so it reads
its own change; what it reads then is never shared (``WROTE_KEY``): the revision it sees is
not committed, and after a rollback the next change committed reuses its number.

The copies are plain frozen values, never ORM objects: they are shared between sessions and
threads, and nothing may change them (what changes a definition is the store's own functions).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import event
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction, UOWTransaction
from sqlmodel import Session, col, select

from cxdesk.store.models import (
    DeskRevision,
    DeskSetting,
    Queue,
    SlaCalendar,
    SlaPolicy,
    Status,
    Survey,
    Team,
    TicketTemplate,
    Workflow,
)
from cxdesk.store.prepared import Prepared

DEFINITIONS_KEY = "cxdesk_definitions"
WROTE_KEY = "cxdesk_definitions_written"
"""Set in ``session.info`` while its transaction has written a definition."""
DEFINITION_MODELS = (DeskSetting, Team, Status, Queue, Survey, Workflow, TicketTemplate,
                     SlaPolicy, SlaCalendar)  # fmt: skip
"""The tables whose changes move the revision (migration 0024's triggers)."""


@dataclass(frozen=True)
class TeamDefinition:
    id: int
    name: str


@dataclass(frozen=True)
class StatusDefinition:
    name: str
    category: str


@dataclass(frozen=True)
class QueueDefinition:
    """A queue as the waiting room reads it (``store.waiting.ticket_queue``)."""

    id: int
    name: str
    team_id: int
    ordering: str


@dataclass(frozen=True)
class SlaPolicyDefinition:
    """An enabled SLA policy, as ``store.sla`` matches it to a new ticket."""

    id: int
    team_id: int | None
    priority: str | None
    calendar_id: int | None
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    warn_percent: int


@dataclass(frozen=True)
class CalendarDefinition:
    """An SLA calendar's desk hours as stored (``engine.sla_clock.DeskHours.of`` reads it and
    checks it, as a dict and a list: its own copies, which nothing changes)."""

    id: int
    time_zone: str
    weekly: dict[str, Any]
    exceptions: list[dict[str, Any]]


@dataclass(frozen=True)
class SurveyDefinition:
    id: int
    name: str
    kind: str
    questions: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class WorkflowDefinition:
    """An enabled workflow as the engine runs it for an event."""

    id: int
    name: str
    survey_name: str | None
    conditions: Mapping[str, Any]
    tasks: tuple[Mapping[str, Any], ...]
    delay_minutes: int | None


@dataclass(frozen=True)
class Definitions:
    """The desk's definitions at one revision."""

    desk: str
    revision: int
    settings: Mapping[str, str]
    teams: Mapping[str, TeamDefinition]
    team_names: Mapping[int, str]
    statuses: Mapping[str, StatusDefinition]
    surveys: Mapping[str, SurveyDefinition]
    survey_names: Mapping[int, str]
    workflows: Mapping[str, tuple[WorkflowDefinition, ...]]
    """Per event kind, its enabled workflows in id order."""
    ticket_templates: Mapping[str, dict[str, Any]]
    """As stored: a copy is what a ticket is made from (``engine.tasks.ticket_spec``)."""
    first_queues: Mapping[int, QueueDefinition]
    """Per team id, its first queue (lowest id): the one its tickets wait in."""
    sla_policies: tuple[SlaPolicyDefinition, ...]
    """The enabled policies in the order they are tried (position, then id)."""
    sla_calendars: Mapping[int, CalendarDefinition]
    worked_out: dict[Any, Any] = field(default_factory=dict, compare=False)
    """What is worked out from these definitions once (a calendar's desk hours), by key."""


_REVISION = Prepared(sa_select(col(DeskRevision.desk), col(DeskRevision.revision)))
_cache: weakref.WeakKeyDictionary[Any, Definitions] = weakref.WeakKeyDictionary()
"""Per database (its engine's connection pool: an engine and its copies with other options
share it), the definitions last read."""
_lock = threading.Lock()


def desk_definitions(session: Session) -> Definitions:
    """The desk's definitions as they are in this transaction (one read of the revision per
    transaction; all of them only after a change)."""
    found: Definitions | None = session.info.get(DEFINITIONS_KEY)
    if found is not None:
        return found
    rows = _REVISION.rows(session)
    row = rows[0] if rows else None
    if row is None:  # its row deleted by hand: nothing tells of a change, nothing is kept
        found = session.info[DEFINITIONS_KEY] = _read(session, "", -1)
        return found
    desk, revision = row
    pool = session.get_bind().engine.pool  # an Engine, or a Connection (transaction(conn))
    with _lock:
        found = _cache.get(pool)
    wrote = session.info.get(WROTE_KEY, False)  # its revision not committed: never shared
    if wrote or found is None or found.desk != desk or found.revision != revision:
        found = _read(session, desk, revision)
        if not wrote:
            with _lock:
                _cache[pool] = found
    session.info[DEFINITIONS_KEY] = found
    return found


def forget_definitions(session: Session) -> None:
    """Make ``session`` read the revision again (it wrote a definition by plain SQL)."""
    session.info.pop(DEFINITIONS_KEY, None)
    session.info[WROTE_KEY] = True


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def _read(session: Session, desk: str, revision: int) -> Definitions:
    teams = {t.name: TeamDefinition(t.id or 0, t.name) for t in session.exec(select(Team)).all()}
    surveys = {
        s.name: SurveyDefinition(s.id or 0, s.name, s.kind, _frozen(s.questions))
        for s in session.exec(select(Survey)).all()
    }
    workflows: dict[str, list[WorkflowDefinition]] = {}
    enabled = select(Workflow).where(col(Workflow.enabled)).order_by(col(Workflow.id))
    for w in session.exec(enabled).all():
        workflows.setdefault(w.event, []).append(
            WorkflowDefinition(
                w.id or 0,
                w.name,
                w.survey_name,
                _frozen(w.conditions or {}),
                _frozen(w.tasks),
                w.delay_minutes,
            )  # fmt: skip
        )
    first_queues: dict[int, QueueDefinition] = {}
    for q in session.exec(select(Queue).order_by(col(Queue.id).desc())).all():
        first_queues[q.team_id] = QueueDefinition(q.id or 0, q.name, q.team_id, q.ordering)
    policies = select(SlaPolicy).where(col(SlaPolicy.enabled))
    return Definitions(
        desk=desk,
        revision=revision,
        settings=MappingProxyType(
            {s.name: s.value for s in session.exec(select(DeskSetting)).all()}
        ),
        teams=MappingProxyType(teams),
        team_names=MappingProxyType({t.id: t.name for t in teams.values()}),
        statuses=MappingProxyType(
            {s.name: StatusDefinition(s.name, s.category) for s in session.exec(select(Status))}
        ),
        surveys=MappingProxyType(surveys),
        survey_names=MappingProxyType({s.id: s.name for s in surveys.values()}),
        workflows=MappingProxyType({kind: tuple(found) for kind, found in workflows.items()}),
        ticket_templates=MappingProxyType(
            {t.name: t.definition for t in session.exec(select(TicketTemplate))}
        ),
        first_queues=MappingProxyType(first_queues),
        sla_policies=tuple(
            SlaPolicyDefinition(
                p.id or 0,
                p.team_id,
                p.priority,
                p.calendar_id,
                p.first_response_minutes,
                p.next_response_minutes,
                p.resolution_minutes,
                p.warn_percent,
            )
            for p in session.exec(policies.order_by(col(SlaPolicy.position), col(SlaPolicy.id)))
        ),  # fmt: skip
        sla_calendars=MappingProxyType(
            {
                c.id or 0: CalendarDefinition(
                    c.id or 0, c.time_zone, deepcopy(c.weekly), deepcopy(c.exceptions)
                )
                for c in session.exec(select(SlaCalendar))
            }  # fmt: skip
        ),
    )


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_rollback")
def _forget_at_end(session: OrmSession) -> None:
    """The next transaction of the session reads the revision again (also after a savepoint's
    rollback: what the savepoint wrote is gone)."""
    session.info.pop(DEFINITIONS_KEY, None)


@event.listens_for(OrmSession, "after_transaction_end")
def _shared_again(session: OrmSession, transaction: SessionTransaction) -> None:
    """Its transaction over (not a savepoint: the writes before it stay), the session shares
    what it reads again."""
    if transaction.parent is None:
        session.info.pop(WROTE_KEY, None)


@event.listens_for(OrmSession, "before_flush")
def _forget_on_change(session: OrmSession, _flush: UOWTransaction, _instances: Any) -> None:
    """A session writing a definition reads the definitions again afterwards, and keeps what
    it reads to itself until its transaction ends."""
    if session.info.get(WROTE_KEY) and DEFINITIONS_KEY not in session.info:
        return
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, DEFINITION_MODELS):
            forget_definitions(session)  # type: ignore[arg-type]
            return
