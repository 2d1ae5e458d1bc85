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
from urllib.parse import parse_qs, quote, urlencode

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict, DeskError, NotFound, ValidationFailed
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
from cxdesk.store.surveys import get_survey, submit_response
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
from cxdesk.web.settings import MAX_BODY_BYTES, ServerSettings
from cxdesk.web.twilio_sms import TWILIO_SMS_PATH, TwilioSmsWebhook

PUBLIC_KINDS = ("csat", "nps")
MAX_FIELDS = 100
"""Query or form fields at most; a survey has a handful."""
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
ALREADY = "This survey was already answered. Thank you for your feedback!"
THANKS = "Thank you! Your answer has been recorded."
FORGED_HINT = "Please use the link from your email exactly as it was sent."
NPS_INTRO = "Your answer helps us improve the Ask the Experts desk."
FORM_TYPE = "application/x-www-form-urlencoded"

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


class BadRequest(Exception):
    """The request cannot be read: a 4xx page saying why."""

    def __init__(self, message: str, status: int = 400, title: str = "Not a valid address"):
        super().__init__(message)
        self.status, self.title = status, title


@dataclass(frozen=True)
class LinkCheck:
    """A valid, unanswered CSAT link: the page's introduction and the customer's email."""

    intro: str
    email: str


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
        try:
            reply = self.handle(environ)
        except BadRequest as exc:
            reply = Reply(exc.status, message_page(exc.title, str(exc)))
        except DeskError as exc:  # e.g. the database cannot be reached: say so, in one line
            reply = Reply(500, message_page("Sorry", f"The survey is not available: {exc}"))
        body = reply.html.encode("utf-8")
        replaced = {name.lower() for name, _ in reply.headers}
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
            return Reply(404, message_page("Not found", "There is no survey at this address."))
        address = address_key(environ.get("REMOTE_ADDR", ""))
        if method in ("GET", "HEAD"):
            return self.show(survey, query, address) if survey else self.index()
        if method == "POST" and survey is not None:
            if wait := self.by_address.allow(address):
                return too_many(wait)
            return self.submit(survey, query, read_form(environ))
        return Reply(405, message_page("Not allowed", "Use the form to answer the survey."))

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
            return Reply(200, self._form(survey, query, checked.intro))
        return Reply(200, self._form(survey, query, NPS_INTRO))

    def submit(self, survey: Survey, query: dict[str, str], form: dict[str, str]) -> Reply:
        ref = form.pop("ref", "") or query.get("ref", "")
        answers = {q["id"]: form.get(q["id"], "") for q in survey.questions}
        if survey.kind == "csat":
            checked = self._check_link(survey, ref)
            if isinstance(checked, Reply):
                return checked
            intro, email = checked.intro, checked.email
        else:
            intro, email = NPS_INTRO, _email_answer(survey, form)
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
            return Reply(403, message_page("Link not valid", str(exc)))
        except (Conflict, IntegrityError):  # answered meanwhile (the unique index saw it)
            return Reply(409, message_page("Already answered", ALREADY))
        return Reply(200, message_page("Thank you", THANKS))

    def hall_board(self, method: str, path: str, query: dict[str, str]) -> Reply:
        """The hall board's page, or its rows for the page's poll."""
        if method not in ("GET", "HEAD"):
            return Reply(405, message_page("Not allowed", "The board can only be read."))
        try:
            fontsize = font_size(query.get(FONT_PARAM))
        except FontSizeRefused as exc:
            raise BadRequest(str(exc), title="Not a valid board address") from None
        try:
            rows = self.board.rows()
        except DeskError as exc:
            log.warning("the board cannot read the desk: %s", exc)
            return Reply(503, message_page("Sorry", "The board is not available just now."))
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
                return Reply(403, message_page("Link not valid", f"{exc}. " + FORGED_HINT))
            if already_answered(session, target):
                return Reply(409, message_page("Already answered", ALREADY))
            expert = target.expert.name if target.expert else "our expert"
            return LinkCheck(
                intro=f"How did {expert} do with your ticket {target.ticket.key}?",
                email=(target.ticket.customer_email or "").strip().lower(),
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
        return form_page(
            title=survey.title,
            intro=intro,
            questions=survey.questions,
            action=action,
            values=values,
            errors=errors,
        )


def too_many(wait: float) -> Reply:
    minutes = max(1, math.ceil(wait / 60))
    return Reply(
        429,
        message_page(
            "Too many answers",
            "Too many answers were sent from here or for this email address. Nothing was "
            f"recorded: please try again in {minutes} minute{'s' if minutes > 1 else ''}.",
        ),
        retry_after=math.ceil(wait),
    )


def _email_answer(survey: Survey, form: dict[str, str]) -> str:
    """The answer to the survey's first email question, as the per-email limit counts it."""
    for question in survey.questions:
        if question.get("type") == "email":
            return form.get(str(question["id"]), "").strip().lower()
    return ""


def request_path(environ: dict[str, Any]) -> str:
    """The path as text: the server hands over its bytes as latin-1 (PEP 3333), decoded once."""
    try:
        return str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest("This address is not valid.") from None


def parse_fields(raw: str, *, what: str) -> dict[str, str]:
    """``a=1&b=2`` (a query string, or a form's body as latin-1 text) as text, the first value
    of each name; BadRequest when it is not valid UTF-8, has too many fields or control
    characters."""
    try:
        text = raw.encode("latin-1").decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeError, ValueError):
        hint = " " + FORGED_HINT if what == "address" else ""
        raise BadRequest(f"This {what} is not valid.{hint}", title=f"Not a valid {what}") from None
    # A textarea's line breaks arrive as CRLF: stored as LF (the rule for long answers).
    fields = {k: v[0].replace("\r\n", "\n") for k, v in parsed.items()}
    if any(text_problem(k) or text_problem(v, lines=True) for k, v in fields.items()):
        raise BadRequest(
            f"This {what} holds characters that are not allowed.", title=f"Not a valid {what}"
        )
    return fields


def read_form(environ: dict[str, Any]) -> dict[str, str]:
    """The posted form's fields; BadRequest for another content type, or one too long or not
    valid (the server has already refused a body over MAX_BODY_BYTES)."""
    content_type = str(environ.get("CONTENT_TYPE") or FORM_TYPE).split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadRequest("Use the form to answer the survey.", status=415, title="Not allowed")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("This answer is not valid.", title="Not valid") from None
    if length > MAX_BODY_BYTES:
        raise BadRequest("The answer is too long to send.", status=413, title="Too long")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_fields(raw.decode("latin-1"), what="answer")
