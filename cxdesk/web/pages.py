"""The survey pages, rendered from the Jinja2 templates in ``templates/`` (autoescaped).

Every page is rendered in the current language (``cxdesk.i18n.in_language``: the customer's for
a survey link's page, else the desk's): the templates' text goes through the catalog with
Jinja2's i18n extension, and ``<html lang>`` says which language it is.

Plain, accessible HTML without JavaScript: every question has a visible label; scales and
choices are radio buttons in a fieldset whose legend is the question; required questions
say so in words and carry ``required``; after a refused submit an error summary (role
``alert``) lists each problem, and each field points at its own message with
``aria-describedby``. Every value shown is escaped by the templates, never by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2

from cxdesk.i18n import _, current_language, ngettext, pgettext

SCALE_MAX_OPTIONS = 11
"""A number question with at most this many values (0-10) is a row of radio buttons."""


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("cxdesk.web", "templates"),
        autoescape=True,  # every template is HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # As scripts/catalogs.py extracts them: a {% trans %} block's whitespace is trimmed.
    environment.policies["ext.i18n.trimmed"] = True
    i18n: Any = environment  # the extension adds install_gettext_callables
    i18n.install_gettext_callables(gettext=_, ngettext=ngettext, pgettext=pgettext, newstyle=True)
    environment.globals["page_language"] = page_language
    return environment


def page_language() -> str:
    """The ``<html lang>`` of a page: the language it is rendered in."""
    return current_language()


def render(template: str, **values: Any) -> str:
    return _templates().get_template(template).render(**values)


def message_page(title: str, message: str) -> str:
    """A page that only says something: thanks, or why a link is refused."""
    return render("message.html", title=title, message=message)


def index_page(surveys: Sequence[Mapping[str, str]]) -> str:
    """The open surveys, each ``{"name": ..., "title": ...}``."""
    return render("index.html", title=_("Surveys"), surveys=surveys)


@dataclass(frozen=True)
class Field:
    """One question as the form template shows it."""

    id: str
    label: str
    kind: str
    """``scale`` or ``choice`` (radio buttons), ``textarea``, or ``input``."""
    value: str
    error: str
    hint: str
    required: bool
    options: list[str] = field(default_factory=list)
    input_type: str = "text"
    autocomplete: str = "off"
    numeric: bool = False

    @property
    def described(self) -> list[str]:
        return [
            f"{self.id}-{part}" for part, on in (("hint", self.hint), ("error", self.error)) if on
        ]


def _field(question: Mapping[str, Any], value: str, error: str) -> Field:
    qid = str(question["id"])
    kind = str(question.get("type", "text"))
    common: dict[str, Any] = {
        "id": qid,
        "label": str(question.get("label") or qid),
        "value": value,
        "error": error,
        "hint": str(question.get("hint") or ""),
        "required": bool(question.get("required")),
    }
    low, high = question.get("min"), question.get("max")
    if kind == "number" and low is not None and high is not None:
        values = range(int(low), int(high) + 1)
        if len(values) <= SCALE_MAX_OPTIONS:
            return Field(kind="scale", options=[str(n) for n in values], **common)
    if kind == "choice":
        return Field(kind="choice", options=[str(c) for c in question.get("choices", [])], **common)
    if kind == "textarea":
        return Field(kind="textarea", **common)
    return Field(
        kind="input",
        input_type={"email": "email", "phone": "tel"}.get(kind, "text"),
        autocomplete={"email": "email", "phone": "tel"}.get(kind, "off"),
        numeric=kind == "number",
        **common,
    )


def form_page(
    *,
    title: str,
    intro: str,
    questions: Sequence[Mapping[str, Any]],
    action: str,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> str:
    """The survey as a form posting to ``action``; ``errors`` by question id after a refusal."""
    values, errors = values or {}, errors or {}
    fields = [
        _field(q, values.get(str(q["id"]), ""), errors.get(str(q["id"]), "")) for q in questions
    ]
    known = {f.id for f in fields}
    unknown = [(qid, error) for qid, error in errors.items() if qid not in known]
    return render(
        "form.html",
        title=title,
        intro=intro,
        action=action,
        fields=fields,
        errors=bool(errors),
        unknown=unknown,
    )


def template_source(name: str) -> str:
    """A file of ``templates/`` as it is (the board's script, whose hash the CSP names)."""
    source, _filename, _uptodate = _templates().loader.get_source(_templates(), name)  # type: ignore[union-attr]
    return source
