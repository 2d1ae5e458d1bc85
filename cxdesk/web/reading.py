"""Reading a request to the survey application: its path, query and posted form as text, or a
``BadRequest`` (a 4xx page saying why, in the current language)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from cxdesk.i18n import N_, _
from cxdesk.text import text_problem
from cxdesk.web.settings import MAX_BODY_BYTES

MAX_FIELDS = 100
"""Query or form fields at most; a survey has a handful."""
FORM_TYPE = "application/x-www-form-urlencoded"
FORGED_HINT = N_("Please use the link from your email exactly as it was sent.")


class BadRequest(Exception):
    """The request cannot be read: a 4xx page saying why."""

    def __init__(self, message: str, status: int = 400, title: str | None = None):
        super().__init__(message)
        self.status, self.title = status, title or _("Not a valid address")


def request_path(environ: dict[str, Any]) -> str:
    """The path as text: the server hands over its bytes as latin-1 (PEP 3333), decoded once."""
    try:
        return str(environ.get("PATH_INFO", "/")).encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise BadRequest(_("This address is not valid.")) from None


def parse_fields(raw: str, *, what: str) -> dict[str, str]:
    """``a=1&b=2`` (a query string, or a form's body as latin-1 text) as text, the first value
    of each name; BadRequest when it is not valid UTF-8, has too many fields or control
    characters."""
    try:
        text = raw.encode("latin-1").decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (UnicodeError, ValueError):
        if what == "address":
            raise BadRequest(
                _("This address is not valid. {hint}").format(hint=_(FORGED_HINT))
            ) from None
        raise BadRequest(_("This answer is not valid."), title=_("Not a valid answer")) from None
    # A textarea's line breaks arrive as CRLF: stored as LF (the rule for long answers).
    fields = {k: v[0].replace("\r\n", "\n") for k, v in parsed.items()}
    if any(text_problem(k) or text_problem(v, lines=True) for k, v in fields.items()):
        if what == "address":
            raise BadRequest(_("This address holds characters that are not allowed."))
        raise BadRequest(
            _("This answer holds characters that are not allowed."), title=_("Not a valid answer")
        )
    return fields


def read_form(environ: dict[str, Any]) -> dict[str, str]:
    """The posted form's fields; BadRequest for another content type, or one too long or not
    valid (the server has already refused a body over MAX_BODY_BYTES)."""
    content_type = str(environ.get("CONTENT_TYPE") or FORM_TYPE).split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadRequest(
            _("Use the form to answer the survey."), status=415, title=_("Not allowed")
        )
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest(_("This answer is not valid."), title=_("Not valid")) from None
    if length > MAX_BODY_BYTES:
        raise BadRequest(_("The answer is too long to send."), status=413, title=_("Too long"))
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return parse_fields(raw.decode("latin-1"), what="answer")
