"""Survey answers that arrive from outside the desk: a CSV file from another survey tool.

Every row is a survey response like one typed at the desk: it is validated against the
survey's questions and stored with its ``survey.response`` event, and its workflows run (an
NPS detractor opens a ticket). Each row runs in its own savepoint inside one transaction, so
a bad row (a wrong answer, or a workflow that cannot act on it) is reported by its line and
rolled back alone while the good rows are kept.

A column named ``ticket`` (when no question has that id) holds the key of the ticket the
answer is about: the response is then linked to that ticket and to its owner, the expert it
rates, exactly like an answer given through the ticket's CSAT link (and, like one, only once).
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from cxdesk.engine.dispatch import dispatch_pending, unit_of_work
from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.store.csv_files import CsvFile, ImportReport, RowProblem
from cxdesk.store.db import read_session
from cxdesk.store.events import take_pending_events
from cxdesk.store.survey_links import answer_for_ticket
from cxdesk.store.surveys import get_survey, submit_response
from cxdesk.store.tickets import get_ticket

TICKET_COLUMN = "ticket"


def ticket_column(columns: list[str], questions: list[dict[str, object]]) -> str | None:
    """The CSV column naming each answer's ticket, if the file has one."""
    if any(str(q["id"]).casefold() == TICKET_COLUMN for q in questions):
        return None
    return next((c for c in columns if c.casefold() == TICKET_COLUMN), None)


def answer_columns(
    columns: list[str], questions: list[dict[str, object]], survey: str
) -> dict[str, str]:
    """Question id -> CSV column (names match ignoring case); a column that is no question
    (other than ``ticket``), or a required question without a column, makes the whole file
    unusable."""
    by_id = {str(q["id"]).casefold(): str(q["id"]) for q in questions}
    ticket = ticket_column(columns, questions)
    unknown = [c for c in columns if c.casefold() not in by_id and c != ticket]
    if unknown:
        raise DeskError(
            _(
                "Column(s) {columns} are not questions of survey {survey!r} (its questions: "
                "{questions})"
            ).format(
                columns=", ".join(repr(c) for c in unknown),
                survey=survey,
                questions=", ".join(by_id.values()),
            )
        )
    mapping = {by_id[c.casefold()]: c for c in columns if c != ticket}
    missing = [str(q["id"]) for q in questions if q.get("required") and q["id"] not in mapping]
    if missing:
        raise DeskError(
            _("Survey {survey!r} requires column(s) {columns}").format(
                survey=survey, columns=", ".join(missing)
            )
        )
    return mapping


def import_responses(engine: Engine, *, survey_name: str, csv_file: CsvFile) -> ImportReport:
    """Store each good row as a response (its workflows run); report each bad row by line."""
    with read_session(engine) as session:
        survey = get_survey(session, survey_name)
        mapping = answer_columns(csv_file.columns, survey.questions, survey.name)
        ticket_key = ticket_column(csv_file.columns, survey.questions)
    report = ImportReport(problems=list(csv_file.problems))
    with unit_of_work(engine) as session:
        for row in csv_file.rows:
            answers = {qid: row.values[column] for qid, column in mapping.items()}
            try:
                with session.begin_nested():
                    key = row.values[ticket_key].strip() if ticket_key else ""
                    if key:
                        ticket = get_ticket(session, key)
                        answer_for_ticket(
                            session,
                            ticket=ticket,
                            expert_id=ticket.owner_id,
                            answers=answers,
                            survey=survey.name,
                        )
                    else:
                        submit_response(
                            session, actor=None, survey_name=survey.name, answers=answers
                        )
                    dispatch_pending(session)
            except (DeskError, IntegrityError) as exc:
                take_pending_events(session)  # events of the rolled-back row are gone
                reason = str(exc) if isinstance(exc, DeskError) else "conflicts with stored data"
                report.problems.append(RowProblem(row.line, reason))
                continue
            report.created += 1
    report.problems.sort(key=lambda p: p.line)
    return report
