"""The survey server: the desk's CSAT and NPS surveys as web forms (``cxdesk survey serve``).

A WSGI application on the standard library's ``wsgiref`` server (one thread per request):

- ``GET /<survey>`` shows the form of a survey of kind ``csat`` or ``nps``; ``POST`` to the
  same URL submits it. A submitted answer is a survey response like any other: stored with
  its ``survey.response`` event in one transaction whose workflows run before it commits.
- A CSAT survey needs the signed ``ref`` of its link (``cxdesk.store.survey_links``): a
  forged or changed link, or one already answered, gets a page saying so and nothing is
  stored. The answer is linked to the ticket and expert and logged on the ticket.
- A refused answer shows the form again with the problem next to each question.

The CSAT link's SupportRep, RepEmail and CustomerName parameters are kept for survey tools
that read them; the page itself names the expert from the desk's own records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict, DeskError, NotFound, ValidationFailed
from cxdesk.store.db import read_session
from cxdesk.store.models import Survey
from cxdesk.store.survey_links import InvalidLink, already_answered, answer_by_link, read_link
from cxdesk.store.surveys import get_survey, submit_response
from cxdesk.web.pages import form_page, message_page, page

PUBLIC_KINDS = ("csat", "nps")
MAX_BODY = 64 * 1024
HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
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
    500: "500 Internal Server Error",
}
ALREADY = "This survey was already answered. Thank you for your feedback!"
THANKS = "Thank you! Your answer has been recorded."

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Reply:
    status: int
    html: str


class SurveyApp:
    """The WSGI application for one desk database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            reply = self.handle(environ)
        except DeskError as exc:  # e.g. the database cannot be reached: say so, in one line
            reply = Reply(500, message_page("Sorry", f"The survey is not available: {exc}"))
        body = reply.html.encode("utf-8")
        start_response(STATUS[reply.status], [*HEADERS, ("Content-Length", str(len(body)))])
        return [body]

    def handle(self, environ: dict[str, Any]) -> Reply:
        method = environ.get("REQUEST_METHOD", "GET")
        name = unquote(environ.get("PATH_INFO", "/")).strip("/")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if not name:
            return self.index()
        survey = self._public_survey(name)
        if survey is None:
            return Reply(404, message_page("Not found", "There is no survey at this address."))
        if method == "GET":
            return self.show(survey, query)
        if method == "POST":
            form = self._read_form(environ)
            if form is None:
                return Reply(413, message_page("Too long", "The answer is too long to send."))
            return self.submit(survey, query, form)
        return Reply(405, message_page("Not allowed", "Use the form to answer the survey."))

    # -- pages ------------------------------------------------------------------------------

    def index(self) -> Reply:
        """The open surveys (NPS); a CSAT survey is reached only through its emailed link."""
        with read_session(self.engine) as session:
            surveys = session.exec(
                select(Survey).where(Survey.kind == "nps").order_by(col(Survey.name))
            ).all()
            items = "".join(
                f'<li><a href="/{quote(s.name)}">{escape(s.title)}</a></li>' for s in surveys
            )
        body = "<h1>Surveys</h1>\n" + (f"<ul>{items}</ul>" if items else "<p>No open survey.</p>")
        return Reply(200, page("Surveys", body))

    def show(self, survey: Survey, query: dict[str, str]) -> Reply:
        if survey.kind == "csat":
            refused = self._check_link(survey, query.get("ref", ""))
            if isinstance(refused, Reply):
                return refused
            intro = refused
        else:
            intro = "Your answer helps us improve the Ask the Experts desk."
        return Reply(200, self._form(survey, query, intro))

    def submit(self, survey: Survey, query: dict[str, str], form: dict[str, str]) -> Reply:
        ref = form.pop("ref", "") or query.get("ref", "")
        answers = {q["id"]: form.get(q["id"], "") for q in survey.questions}
        if survey.kind == "csat":
            refused = self._check_link(survey, ref)
            if isinstance(refused, Reply):
                return refused
            intro = refused
        else:
            intro = "Your answer helps us improve the Ask the Experts desk."
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

    # -- helpers ----------------------------------------------------------------------------

    def _public_survey(self, name: str) -> Survey | None:
        with read_session(self.engine) as session:
            try:
                survey = get_survey(session, name)
            except NotFound:
                return None
            return survey if survey.kind in PUBLIC_KINDS else None

    def _check_link(self, survey: Survey, ref: str) -> Reply | str:
        """The page's introduction for a valid, unanswered link, else the refusal."""
        with unit_of_work(self.engine) as session:  # may create the desk secret
            try:
                target = read_link(session, ref, survey.name)
            except InvalidLink as exc:
                return Reply(403, message_page("Link not valid", f"{exc}. " + FORGED_HINT))
            if already_answered(session, target):
                return Reply(409, message_page("Already answered", ALREADY))
            expert = target.expert.name if target.expert else "our expert"
            return f"How did {expert} do with your ticket {target.ticket.key}?"

    def _form(
        self,
        survey: Survey,
        query: dict[str, str],
        intro: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> str:
        action = f"/{survey.name}"
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

    @staticmethod
    def _read_form(environ: dict[str, Any]) -> dict[str, str] | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return None
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        parsed = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


FORGED_HINT = "Please use the link from your email exactly as it was sent."


# -- the server -------------------------------------------------------------------------------


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """One short line per request on stderr, without the client's query (it holds the ref)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        self.log_message("%s %s %s", self.command, path, code)


def make_survey_server(engine: Engine, host: str, port: int) -> WSGIServer:
    """A server bound to ``host:port`` (not serving yet); OSError if the port is taken."""
    return make_server(
        host,
        port,
        SurveyApp(engine),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )


def serve_in_thread(server: WSGIServer) -> threading.Thread:
    """Serve until ``server.shutdown()``; for the TUI, tests and the CLI alike."""
    thread = threading.Thread(target=server.serve_forever, name="survey-server", daemon=True)
    thread.start()
    return thread
