"""The survey application: the desk's CSAT and NPS surveys as web forms (WSGI).

``cxdesk.web.server`` serves it (waitress); this module owns what a request means:

- ``GET /<survey>`` shows the form of a survey of kind ``csat`` or ``nps``; ``POST`` to the
  same URL submits it. A submitted answer is a survey response like any other: stored with
  its ``survey.response`` event in one transaction whose workflows run before it commits.
- A CSAT survey needs the signed ``ref`` of its link (``cxdesk.store.survey_links``): a
  forged or changed link, or one already answered, gets a page saying so and nothing is
  stored. The answer is linked to the ticket and expert and logged on the ticket.
- A refused answer shows the form again with the problem next to each question.
- Answers are rate limited per client address and per email (``cxdesk.web.limits``): past a
  limit the answer gets a 429 page and nothing is stored. A CSAT page viewed with a bad link
  counts against its address's limit too.
- Showing a page only reads the desk (on SQLite it never waits for the write lock): the
  signing secret is made when the server starts (or at the first link, if the desk could not
  be read then), in its own transaction.
- Every page is in the desk's language (its ``language`` setting, else English); a survey
  link's pages (its form, the thanks, "already answered") are in its ticket's customer's
  language, the survey's title and questions too (``store.surveys.survey_in_language``).
- A malformed address (bad percent-encoding or UTF-8, too many fields, a character the desk's
  one text rule refuses: ``cxdesk.text``, for names in the path and field names, for long
  answers in the values) gets a 4xx page, never a 500.

``POST /twilio/sms`` is Twilio's inbound text message webhook (``cxdesk.web.twilio_sms``).
``GET /board`` (and its rows, ``/board/rows``) is the hall board (``cxdesk.web.board``): these
paths come before surveys, so a survey named ``board`` is not reachable here.

The CSAT link's SupportRep, RepEmail and CustomerName parameters are kept for survey tools
that read them; the page itself names the expert from the desk's own records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict, DeskError, NotFound, ValidationFailed
from cxdesk.i18n import DEFAULT_LANGUAGE, N_, _, current_language, in_language, ngettext
from cxdesk.store.customer_language import desk_language, ticket_language
from cxdesk.store.db import read_session, transaction
from cxdesk.store.models import DeskSetting, Survey
from cxdesk.store.survey_links import (
    SECRET_SETTING,
    InvalidLink,
    already_answered,
    answer_by_link,
    desk_secret,
    read_link,
)
from cxdesk.store.surveys import get_survey, submit_response, survey_in_language
from cxdesk.text import text_problem
from cxdesk.web.board import (
    BOARD_PATH,
    FONT_PARAM,
    ROWS_PATH,
    FontSizeRefused,
    HallBoardPages,
    board_page,
    board_policy,
    font_size,
)
from cxdesk.web.limits import RateLimiter, address_key
from cxdesk.web.pages import form_page, index_page, message_page
from cxdesk.web.reading import FORGED_HINT, BadRequest, parse_fields, read_form, request_path
from cxdesk.web.settings import ServerSettings
from cxdesk.web.twilio_sms import TWILIO_SMS_PATH, TwilioSmsWebhook

PUBLIC_KINDS = ("csat", "nps")
HTML_TYPE = "text/html; charset=utf-8"
HEADERS = [
    ("Cache-Control", "no-store"),
    # The page address carries the signed ref: never hand it to another site.
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
]
STATUS = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    409: "409 Conflict",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
ALREADY = N_("This survey was already answered. Thank you for your feedback!")
THANKS = N_("Thank you! Your answer has been recorded.")
NPS_INTRO = N_("Your answer helps us improve the Ask the Experts desk.")

StartResponse = Callable[..., Any]
log = logging.getLogger("cxdesk.web")


@dataclass(frozen=True)
class Reply:
    status: int
    html: str
    retry_after: int = 0
    """Seconds, for a 429."""
    content_type: str = HTML_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    """Headers that replace the common ones of the same name (``HEADERS``)."""


@dataclass(frozen=True)
class LinkCheck:
    """A valid, unanswered CSAT link: its ticket, expert, customer's email and language."""

    key: str
    expert: str
    email: str
    language: str

    def intro(self) -> str:
        """The page's introduction, in the current language."""
        if self.expert:
            return _("How did {expert} do with your ticket {key}?").format(
                expert=self.expert, key=self.key
            )
        return _("How did we do with your ticket {key}?").format(key=self.key)


class SurveyApp:
    """The WSGI application for one desk database."""

    def __init__(self, engine: Engine, settings: ServerSettings | None = None):
        self.engine = engine
        self.settings = settings or ServerSettings()
        window = self.settings.answer_window
        self.by_address = RateLimiter(self.settings.answers_per_address, window)
        self.by_email = RateLimiter(self.settings.answers_per_email, window)
        self._secret_made = False
        self.twilio_sms = TwilioSmsWebhook(engine, self.settings)
        self.board = HallBoardPages(engine)
        try:
            self._make_secret()
        except (DeskError, SQLAlchemyError) as exc:  # no desk yet, or the database away
            log.warning("survey links are checked once the desk can be read: %s", exc)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # The desk's language; a survey link's page is in its customer's (``_check_link``).
        with in_language(self._desk_language()):
            try:
                reply = self.handle(environ)
            except BadRequest as exc:
                reply = Reply(exc.status, message_page(exc.title, str(exc)))
            except DeskError as exc:  # e.g. the database cannot be reached: say so, in one line
                reply = Reply(
                    500,
                    message_page(
                        _("Sorry"), _("The survey is not available: {problem}").format(problem=exc)
                    ),
                )
        body = reply.html.encode("utf-8")
        replaced = {name.lower() for name, _value in reply.headers}
        headers = [("Content-Type", reply.content_type), *reply.headers]
        headers += [(name, value) for name, value in HEADERS if name.lower() not in replaced]
        headers.append(("Content-Length", str(len(body))))
        if reply.retry_after:
            headers.append(("Retry-After", str(reply.retry_after)))
        start_response(STATUS[reply.status], headers)
        # One line per request, without the query (it holds the signed ref).
        log.info(
            "%s %s %s %s",
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD"),
            quote(environ.get("PATH_INFO", ""), safe="/"),
            reply.status,
        )
        return [body]

    def handle(self, environ: dict[str, Any]) -> Reply:
        method = environ.get("REQUEST_METHOD", "GET")
        path = request_path(environ)
        if path == TWILIO_SMS_PATH:
            answer = self.twilio_sms.handle(environ)
            return Reply(answer.status, answer.body, content_type=answer.content_type)
        name = path.strip("/")
        query = parse_fields(environ.get("QUERY_STRING", ""), what="address")
        if path in (BOARD_PATH, ROWS_PATH):
            return self.hall_board(method, path, query)
        survey = self._public_survey(name) if name else None
        if name and survey is None:
            return Reply(
                404, message_page(_("Not found"), _("There is no survey at this address."))
            )
        address = address_key(environ.get("REMOTE_ADDR", ""))
        if method in ("GET", "HEAD"):
            return self.show(survey, query, address) if survey else self.index()
        if method == "POST" and survey is not None:
            if wait := self.by_address.allow(address):
                return too_many(wait)
            return self.submit(survey, query, read_form(environ))
        return Reply(405, message_page(_("Not allowed"), _("Use the form to answer the survey.")))

    # -- pages ------------------------------------------------------------------------------

    def index(self) -> Reply:
        """The open surveys (NPS); a CSAT survey is reached only through its emailed link."""
        with read_session(self.engine) as session:
            surveys = session.exec(
                select(Survey).where(Survey.kind == "nps").order_by(col(Survey.name))
            ).all()
            listed = [{"name": s.name, "title": s.title} for s in surveys]
        return Reply(200, index_page(listed))

    def show(self, survey: Survey, query: dict[str, str], address: str) -> Reply:
        if survey.kind == "csat":
            checked = self._check_link(survey, query.get("ref", ""), viewed_from=address)
            if isinstance(checked, Reply):
                return checked
            with in_language(checked.language):
                return Reply(200, self._form(survey, query, checked.intro()))
        return Reply(200, self._form(survey, query, _(NPS_INTRO)))

    def submit(self, survey: Survey, query: dict[str, str], form: dict[str, str]) -> Reply:
        ref = form.pop("ref", "") or query.get("ref", "")
        if survey.kind == "csat":
            checked = self._check_link(survey, ref)
            if isinstance(checked, Reply):
                return checked
            with in_language(checked.language):
                return self._answer(survey, query, form, ref, checked.intro(), checked.email)
        return self._answer(survey, query, form, ref, _(NPS_INTRO), _email_answer(survey, form))

    def _answer(
        self,
        survey: Survey,
        query: dict[str, str],
        form: dict[str, str],
        ref: str,
        intro: str,
        email: str,
    ) -> Reply:
        """Store an answer (its link checked), or say why not, in the current language."""
        answers = {q["id"]: form.get(q["id"], "") for q in survey.questions}
        if email and (wait := self.by_email.allow(email)):
            return too_many(wait)
        try:
            with unit_of_work(self.engine) as session:
                if survey.kind == "csat":
                    answer_by_link(session, ref=ref, answers=answers, survey=survey.name)
                else:
                    submit_response(session, actor=None, survey_name=survey.name, answers=answers)
        except ValidationFailed as exc:
            return Reply(400, self._form(survey, {**query, "ref": ref}, intro, form, exc.errors))
        except InvalidLink as exc:
            return Reply(403, message_page(_("Link not valid"), str(exc)))
        except (Conflict, IntegrityError):  # answered meanwhile (the unique index saw it)
            return Reply(409, message_page(_("Already answered"), _(ALREADY)))
        return Reply(200, message_page(_("Thank you"), _(THANKS)))

    def hall_board(self, method: str, path: str, query: dict[str, str]) -> Reply:
        """The hall board's page, or its rows for the page's poll."""
        if method not in ("GET", "HEAD"):
            return Reply(405, message_page(_("Not allowed"), _("The board can only be read.")))
        try:
            fontsize = font_size(query.get(FONT_PARAM))
        except FontSizeRefused as exc:
            raise BadRequest(str(exc), title=_("Not a valid board address")) from None
        try:
            rows = self.board.rows()
        except DeskError as exc:
            log.warning("the board cannot read the desk: %s", exc)
            return Reply(503, message_page(_("Sorry"), _("The board is not available just now.")))
        if path == ROWS_PATH:
            return Reply(200, rows)
        return Reply(
            200, board_page(rows, fontsize), headers=(("Content-Security-Policy", board_policy()),)
        )

    # -- helpers ----------------------------------------------------------------------------

    def _public_survey(self, name: str) -> Survey | None:
        if text_problem(name) is not None:
            return None
        with read_session(self.engine) as session:
            try:
                survey = get_survey(session, name)
            except NotFound:
                return None
            return survey if survey.kind in PUBLIC_KINDS else None

    def _desk_language(self) -> str:
        """The desk's language setting (English when the desk cannot be read)."""
        try:
            with read_session(self.engine) as session:
                return desk_language(session)
        except (DeskError, SQLAlchemyError):
            return DEFAULT_LANGUAGE

    def _make_secret(self) -> None:
        """The desk's signing secret exists, made once in one write transaction if not, so
        that checking a link is a read: a page view never takes the desk's write lock."""
        if self._secret_made:
            return
        with read_session(self.engine) as session:
            made = session.get(DeskSetting, SECRET_SETTING) is not None
        if not made:
            with transaction(self.engine) as session:
                desk_secret(session)
        self._secret_made = True

    def _check_link(
        self, survey: Survey, ref: str, *, viewed_from: str | None = None
    ) -> Reply | LinkCheck:
        """The page's introduction for a valid, unanswered link, else the refusal. A page view
        (``viewed_from`` its client's address key) with a bad link counts against the
        address's answer limit: a flood of forged links gets 429s."""
        self._make_secret()
        with read_session(self.engine) as session:
            try:
                target = read_link(session, ref, survey.name)
            except InvalidLink as exc:
                if viewed_from is not None and (wait := self.by_address.allow(viewed_from)):
                    return too_many(wait)
                return Reply(
                    403,
                    message_page(
                        _("Link not valid"),
                        _("{problem}. {hint}").format(problem=exc, hint=_(FORGED_HINT)),
                    ),
                )
            language = ticket_language(session, target.ticket)
            if already_answered(session, target):
                with in_language(language):
                    return Reply(409, message_page(_("Already answered"), _(ALREADY)))
            return LinkCheck(
                key=target.ticket.key or "",
                expert=target.expert.name if target.expert else "",
                email=(target.ticket.customer_email or "").strip().lower(),
                language=language,
            )

    def _form(
        self,
        survey: Survey,
        query: dict[str, str],
        intro: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> str:
        action = "/" + quote(survey.name)
        if query:
            action += "?" + urlencode(query)
        shown = survey_in_language(survey, current_language(), self._desk_language())
        return form_page(
            title=shown.title,
            intro=intro,
            questions=shown.questions,
            action=action,
            values=values,
            errors=errors,
        )


def too_many(wait: float) -> Reply:
    minutes = max(1, math.ceil(wait / 60))
    return Reply(
        429,
        message_page(
            _("Too many answers"),
            ngettext(
                "Too many answers were sent from here or for this email address. Nothing was "
                "recorded: please try again in {n} minute.",
                "Too many answers were sent from here or for this email address. Nothing was "
                "recorded: please try again in {n} minutes.",
                minutes,
            ).format(n=minutes),
        ),
        retry_after=math.ceil(wait),
    )


def _email_answer(survey: Survey, form: dict[str, str]) -> str:
    """The answer to the survey's first email question, as the per-email limit counts it."""
    for question in survey.questions:
        if question.get("type") == "email":
            return form.get(str(question["id"]), "").strip().lower()
    return ""
