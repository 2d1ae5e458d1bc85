"""Auto-escalation rules: after N minutes without resolution, escalate to a user or a team.

Only assigned, unresolved tickets that were never escalated are candidates: resolved tickets,
tickets escalated by hand (or by an earlier rule) and tickets nobody pulled yet are left out.
Escalating is a real status change (``ticket.escalated``), so workflows react to it, and the
recipient is told by email through the outbox.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.outbox import enqueue
from cxdesk.store.directory import get_status, team_members
from cxdesk.store.events import record_event
from cxdesk.store.models import (
    EscalationRule,
    Status,
    StatusCategory,
    Survey,
    SurveyResponse,
    Team,
    Ticket,
    User,
    utcnow,
)
from cxdesk.store.tickets import change_status


def due_for_rule(session: Session, rule: EscalationRule, now: datetime) -> list[Ticket]:
    """Tickets the rule should escalate now (locked on PostgreSQL, skipping busy ones)."""
    open_statuses = select(Status.name).where(Status.category == StatusCategory.open)
    statement = select(Ticket).where(
        col(Ticket.status).in_(open_statuses.scalar_subquery()),
        col(Ticket.owner_id).is_not(None),
        col(Ticket.escalated_at).is_(None),
        Ticket.status != "escalated",
        Ticket.created_at <= now - timedelta(minutes=rule.after_minutes),
    )
    if rule.team_id is not None:
        statement = statement.where(Ticket.team_id == rule.team_id)
    if rule.survey_name:
        statement = (
            statement.join(SurveyResponse, col(SurveyResponse.id) == col(Ticket.response_id))
            .join(Survey, col(Survey.id) == col(SurveyResponse.survey_id))
            .where(Survey.name == rule.survey_name)
        )
    statement = statement.order_by(col(Ticket.created_at)).limit(200)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True, of=Ticket)
    return list(session.exec(statement).all())


def _escalate(session: Session, rule: EscalationRule, ticket: Ticket) -> None:
    recipients: list[User] = []
    if rule.recipient_team_id is not None and rule.recipient_team_id != ticket.team_id:
        old_team, new_team = (
            session.get(Team, ticket.team_id),
            session.get(Team, rule.recipient_team_id),
        )
        assert old_team is not None and new_team is not None and new_team.id is not None
        ticket.team_id, ticket.owner_id = new_team.id, None
        session.add(ticket)
        session.flush()
        record_event(session, kind="ticket.updated", actor=None, ticket_id=ticket.id,
                     field_name="team", from_value=old_team.name, to_value=new_team.name,
                     detail=f"escalation rule {rule.name}")  # fmt: skip
        recipients = list(team_members(session, new_team))
    if rule.recipient_user_id is not None:
        user = session.get(User, rule.recipient_user_id)
        if user is not None:
            recipients.append(user)
    change_status(session, None, ticket, get_status(session, "escalated"))
    for user in recipients:
        enqueue(
            session,
            channel="email",
            to=user.email,
            subject=f"Escalated to you: {ticket.key} {ticket.title}"[:300],
            body=(
                f"{ticket.key} ({ticket.title}) has waited more than {rule.after_minutes} "
                f"minutes without resolution and was escalated by the rule {rule.name!r}."
            ),
            ticket_id=ticket.id,
        )


def run_escalations(engine: Engine, *, now: datetime | None = None) -> int:
    """Apply every enabled rule once; returns how many tickets were escalated."""
    now = now or utcnow()
    escalated = 0
    with unit_of_work(engine) as session:
        rules = session.exec(
            select(EscalationRule)
            .where(col(EscalationRule.enabled))
            .order_by(col(EscalationRule.id))
        ).all()
        for rule in rules:
            for ticket in due_for_rule(session, rule, now):
                _escalate(session, rule, ticket)
                escalated += 1
    return escalated
