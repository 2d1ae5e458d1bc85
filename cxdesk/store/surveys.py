"""Surveys as data: question definitions, answer validation, and submitting a response.

A question is a dict: ``id`` (answer key), ``label``, ``type`` (text, textarea, email, phone,
choice, number), ``required``, optional ``hint``, ``choices`` (choice), ``min``/``max``
(number), ``max_length`` (text), ``languages`` (its label and hint per language:
``{"it": {"label": ..., "hint": ...}}``). A survey's ``languages`` gives its title per language.
The check-in form, the CSAT and NPS surveys all use this; a customer reads a survey in their
language (``survey_in_language``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from cxdesk.errors import Conflict, NotFound, ValidationFailed, must_be_one_of, unknown_keys
from cxdesk.i18n import _
from cxdesk.store import together
from cxdesk.store.customer_language import (
    LANGUAGES_KEY,
    customer_language_code,
    text_in_language,
    variant_problems,
)
from cxdesk.store.definitions import desk_definitions
from cxdesk.store.directory import get_setting, require_admin
from cxdesk.store.events import EventFields, event_values, record_event, recorded
from cxdesk.store.in_hand import insert_row, new_row, new_values, note_given, set_new, written
from cxdesk.store.models import Event, Survey, SurveyResponse, User
from cxdesk.store.phones import normalise_phone
from cxdesk.text import check_names, text_problem

QUESTION_TYPES = ("text", "textarea", "email", "phone", "choice", "number")
QUESTION_TEXTS = ("label", "hint")
"""What a question's ``languages`` table may give per language."""
_RESPONSES = SurveyResponse.__table__  # type: ignore[attr-defined]
_RESPONSE_COLUMNS = [column.name for column in _RESPONSES.columns if column.name != "id"]
_EVENTS = Event.__table__  # type: ignore[attr-defined]
DEFAULT_MAX_LENGTH = {"text": 200, "textarea": 5000, "email": 320, "phone": 40, "choice": 200}


def check_questions(questions: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems with a survey definition, one line each (empty when it is valid)."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, question in enumerate(questions, start=1):
        qid = question.get("id")
        where = _("question {index} ({id})").format(index=index, id=qid or _("no id"))
        if not isinstance(qid, str) or not qid.strip():
            problems.append(_("{where}: needs an id").format(where=where))
        elif qid in seen:
            problems.append(_("{where}: duplicate id").format(where=where))
        else:
            seen.add(qid)
        if question.get("type", "text") not in QUESTION_TYPES:
            problems.append(f"{where}: type {must_be_one_of(QUESTION_TYPES)}")
        if question.get("type") == "choice":
            choices = question.get("choices")
            if not isinstance(choices, list) or not choices:
                problems.append(
                    _("{where}: a choice question needs a list of choices").format(where=where)
                )
        unknown = set(question) - {
            "id", "label", "type", "required", "hint", "choices", "min", "max", "max_length",
            LANGUAGES_KEY,
        }  # fmt: skip
        if unknown:
            problems.append(unknown_keys(where, unknown))
        if LANGUAGES_KEY in question:
            problems += [
                f"{where}: {p}" for p in variant_problems(question[LANGUAGES_KEY], QUESTION_TEXTS)
            ]
    return problems


@dataclass(frozen=True)
class SurveyText:
    """A survey as its reader sees it: the title and questions in one language."""

    title: str
    questions: list[dict[str, Any]]


def survey_in_language(survey: Survey, language: str, fallback: str) -> SurveyText:
    """``survey``'s title and questions in ``language`` (else in ``fallback``, else as
    written)."""
    title = text_in_language(
        {"title": survey.title, LANGUAGES_KEY: survey.languages or {}}, language, fallback
    )["title"]
    questions = [text_in_language(q, language, fallback) for q in survey.questions]
    return SurveyText(title=str(title), questions=questions)


def get_survey(session: Session, name: str) -> Survey:
    survey = session.exec(select(Survey).where(Survey.name == name)).first()
    if survey is None:
        raise NotFound(_("No survey named {name!r}").format(name=name))
    return survey


def save_survey(
    session: Session,
    *,
    actor: User | None,
    name: str,
    title: str,
    kind: str,
    questions: list[dict[str, Any]],
    languages: dict[str, Any] | None = None,
) -> Survey:
    """Create or replace a survey definition (admin only); ``languages``: its title per
    language (``{"it": {"title": ...}}``)."""
    require_admin(actor)
    check_names(name=name, title=title)
    problems = check_questions(questions)
    if languages:
        problems += variant_problems(languages, ("title",))
    if problems:
        raise ValidationFailed({f"survey {name}": "; ".join(problems)})
    survey = session.exec(select(Survey).where(Survey.name == name)).first()
    if survey is None:
        survey = Survey(name=name, title=title)
    survey.title, survey.kind, survey.questions = title, kind, questions
    survey.languages = languages or None
    session.add(survey)
    session.flush()
    return survey


def validate_answers(
    questions: Sequence[Mapping[str, Any]], answers: Mapping[str, Any], *, phone_region: str
) -> dict[str, Any]:
    """Return the cleaned answers in question order, or raise ValidationFailed per field."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    known = {q["id"] for q in questions}
    for key in answers:
        if key not in known:
            errors[key] = _("not a question of this survey (known: {known})").format(
                known=", ".join(known)
            )
    for question in questions:
        qid = question["id"]
        raw = answers.get(qid)
        text = "" if raw is None else str(raw).strip()
        if not text:
            if question.get("required"):
                errors[qid] = _("is required")
            continue
        try:
            cleaned[qid] = _clean_answer(question, text, phone_region)
        except ValueError as exc:
            errors[qid] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _clean_answer(question: Mapping[str, Any], text: str, phone_region: str) -> Any:
    kind = question.get("type", "text")
    if kind == "textarea":  # a browser sends a textarea's line breaks as CRLF
        text = text.replace("\r\n", "\n")
    limit = int(question.get("max_length", DEFAULT_MAX_LENGTH.get(kind, 200)))
    if len(text) > limit:
        raise ValueError(
            _("is too long ({n} characters, at most {limit})").format(n=len(text), limit=limit)
        )
    problem = text_problem(text, lines=kind == "textarea")
    if problem is not None:
        raise ValueError(problem)
    if kind == "email":
        from email_validator import EmailNotValidError, validate_email  # loads on use

        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(_("not a valid email address ({exc})").format(exc=exc)) from None
    if kind == "phone":
        return normalise_phone(text, phone_region)
    if kind == "choice":
        choices = [str(c) for c in question.get("choices", [])]
        for choice in choices:
            if choice.casefold() == text.casefold():
                return choice
        raise ValueError(_("must be one of: {choices}").format(choices=", ".join(choices)))
    if kind == "number":
        try:
            number = int(text)
        except ValueError:
            raise ValueError(_("must be a whole number")) from None
        low, high = question.get("min"), question.get("max")
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(_("must be between {low} and {high}").format(low=low, high=high))
        return number
    return text


def submit_response(
    session: Session,
    *,
    actor: User | None,
    survey_name: str,
    answers: Mapping[str, Any],
    ticket_id: int | None = None,
    language: str | None = None,
) -> SurveyResponse:
    """Validate and store one response and its ``survey.response`` event.

    ``actor`` is the volunteer typing a check-in, or None for a customer answering a link.
    ``language`` is the customer's (a check-in's choice; None: the desk's): the tickets the
    response creates are written to the customer in it. A bad answer or an unknown language
    raises ValidationFailed and nothing is written.
    """
    code = customer_language_code(language)
    survey = desk_definitions(session).surveys.get(survey_name) or get_survey(session, survey_name)
    cleaned = validate_answers(
        survey.questions, answers, phone_region=get_setting(session, "phone_region")
    )
    if ticket_id is not None:
        answered = session.exec(
            select(SurveyResponse).where(
                SurveyResponse.ticket_id == ticket_id, SurveyResponse.survey_id == survey.id
            )
        ).first()
        if answered is not None:
            raise Conflict(_("This survey was already answered for this ticket"))
    assert survey.id is not None
    response = new_row(SurveyResponse, dict(
        survey_id=survey.id,
        submitted_by_id=actor.id if actor else None,
        answers=cleaned,
        ticket_id=ticket_id,
        language=code,
    ))  # fmt: skip
    if actor is not None:
        note_given(session, actor)
    line = EventFields(kind="survey.response", actor=actor, ticket_id=ticket_id,
                       detail=survey.name)  # fmt: skip
    if session.get_bind().dialect.name == "postgresql":  # one round trip for both
        row = event_values(**line)
        response_id, line_id = together.row_with_line(
            session, table=_RESPONSES, row=new_values(response, _RESPONSE_COLUMNS),
            events=_EVENTS, line=row, into="response_id",
        )  # fmt: skip
        set_new(response, id=response_id)
        recorded(session, line_id, row | {"response_id": response_id})
        return written(session, response)  # in hand: its workflows read it
    response = insert_row(session, response)  # in hand: its workflows read it
    line["response_id"] = response.id
    record_event(session, **line)
    return response
