"""Signed survey links: who may answer a ticket's CSAT survey, and recording the answer.

A CSAT link carries ``ref=<ticket id>.<expert id>.<signature>``: an HMAC-SHA256 over the
survey, ticket and expert with the desk's secret (``desk_setting`` ``survey_secret``, made
at random the first time it is needed and never shown). A stranger cannot make a link for
someone else's ticket, and changing any part of one breaks its signature. A ticket's survey
is answered once (a unique index backs this when two answers race), so a reused link is
refused too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from cxdesk.errors import DeskError
from cxdesk.store.definitions import desk_definitions, forget_definitions
from cxdesk.store.events import record_event
from cxdesk.store.models import DeskSetting, SurveyResponse, Ticket, User
from cxdesk.store.surveys import get_survey, submit_response
from cxdesk.store.upsert import dialect_insert

SECRET_SETTING = "survey_secret"
CSAT_SURVEY = "csat"
"""The survey a ticket's ``${tck://Field/surveyToken}`` link answers."""
_SIGNATURE_CHARS = 22  # 128 bits of the HMAC, base64url
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only ("²".isdigit() is true), and a bigint


class InvalidLink(DeskError):
    """The survey link was not made by this desk, or was changed."""


@dataclass(frozen=True)
class LinkTarget:
    """What a valid link is about."""

    survey: str
    ticket: Ticket
    expert: User | None


def desk_secret(session: Session) -> bytes:
    """The desk's signing secret, created on first use (safe when two processes race)."""
    known = desk_definitions(session).settings.get(SECRET_SETTING)
    if known is not None:
        return known.encode()
    row = session.get(DeskSetting, SECRET_SETTING)
    if row is None:
        table = DeskSetting.__table__  # type: ignore[attr-defined]
        dialect = session.get_bind().dialect.name
        insert = dialect_insert(dialect)
        session.connection().execute(
            insert(table)
            .values(name=SECRET_SETTING, value=secrets.token_urlsafe(32))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        forget_definitions(session)  # written by plain SQL: read again from now on
        row = session.get(DeskSetting, SECRET_SETTING, populate_existing=True)
        assert row is not None
    return row.value.encode()


def _signature(secret: bytes, survey: str, ticket_id: int, expert_id: int) -> str:
    message = f"{survey}\n{ticket_id}\n{expert_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_SIGNATURE_CHARS]


def sign_ticket(session: Session, ticket: Ticket, survey: str = CSAT_SURVEY) -> str:
    """The ``ref`` for a ticket's survey link, naming its current owner as the expert."""
    assert ticket.id is not None
    expert_id = ticket.owner_id or 0
    signature = _signature(desk_secret(session), survey, ticket.id, expert_id)
    return f"{ticket.id}.{expert_id}.{signature}"


def read_link(session: Session, ref: str, survey: str = CSAT_SURVEY) -> LinkTarget:
    """The ticket and expert a ``ref`` names, or InvalidLink for a forged or changed one."""
    parts = ref.strip().split(".")
    if len(parts) != 3 or not all(_ID.fullmatch(part) for part in parts[:2]):
        raise InvalidLink("This survey link is not valid")
    ticket_id, expert_id = int(parts[0]), int(parts[1])
    expected = _signature(desk_secret(session), survey, ticket_id, expert_id)
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        raise InvalidLink("This survey link is not valid")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise InvalidLink("This survey link is for a ticket that no longer exists")
    expert = session.get(User, expert_id) if expert_id else None
    return LinkTarget(survey=survey, ticket=ticket, expert=expert)


def already_answered(session: Session, target: LinkTarget) -> bool:
    survey = get_survey(session, target.survey)
    statement = select(SurveyResponse.id).where(
        SurveyResponse.survey_id == survey.id, SurveyResponse.ticket_id == target.ticket.id
    )
    return session.exec(statement).first() is not None


def answer_by_link(
    session: Session, *, ref: str, answers: Mapping[str, Any], survey: str = CSAT_SURVEY
) -> SurveyResponse:
    """Store the customer's answer for the link's ticket and expert, logged on the ticket.

    Raises InvalidLink, Conflict (answered already) or ValidationFailed (per question);
    nothing is written then.
    """
    target = read_link(session, ref, survey)
    expert_id = target.expert.id if target.expert else None
    return answer_for_ticket(
        session, ticket=target.ticket, expert_id=expert_id, answers=answers, survey=survey
    )


def answer_for_ticket(
    session: Session,
    *,
    ticket: Ticket,
    expert_id: int | None,
    answers: Mapping[str, Any],
    survey: str = CSAT_SURVEY,
) -> SurveyResponse:
    """Store an answer about a ticket and the expert it rates, logged on the ticket: the
    link's answer, or a row of an imported CSV file with a ``ticket`` column."""
    response = submit_response(
        session, actor=None, survey_name=survey, answers=answers, ticket_id=ticket.id
    )
    response.expert_id = expert_id
    session.add(response)
    session.flush()
    summary = ", ".join(f"{k}={v}" for k, v in response.answers.items() if k != "comment")
    record_event(
        session,
        kind="survey.answered",
        actor=None,
        ticket_id=ticket.id,
        response_id=response.id,
        field_name=survey,
        to_value=summary[:500],
        detail=str(response.answers.get("comment", "")) or None,
        triggers_workflows=False,  # the survey.response event is the one workflows see
    )
    return response
