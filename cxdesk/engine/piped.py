"""Piped text: ``${tck://Field/ownerName}``, ``${tck://kv/Firstname}``, ``${q://email}``,
``${e://Field/name}`` in workflow templates, compatible with the seed help pages' syntax;
``${desk://TicketsOpen}`` in scheduled workflows: desk-wide figures (``engine.desk_figures``).

Rendering is a single pass over the *template*: a piped value is inserted as plain text and is
never read as a template itself. Inside a URL (``http://`` or ``https://`` up to whitespace)
every piped value is percent-encoded, so ``Zoë & Ann O'Neil`` still yields a link whose
parameters decode back exactly. For header fields (``header=True``) CR/LF become spaces, so a
value can never add an email header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote

from cxdesk.errors import ValidationFailed

PLACEHOLDER = re.compile(r"\$\{([a-z]+://(?:Field/|kv/)?)([^{}$]*)\}")
ANY_PLACEHOLDER = re.compile(r"\$\{[^}]*\}?")
URL = re.compile(r"https?://[^\s<>\"']+")
NAMESPACES = ("tck://Field/", "tck://kv/", "q://", "e://Field/", "desk://")

# The ticket fields ``${tck://Field/<name>}`` may name.
TICKET_FIELDS = (
    "key",
    "title",
    "status",
    "priority",
    "team",
    "originTeam",
    "ownerName",
    "ownerEmail",
    "ownerUsername",
    "customerName",
    "customerEmail",
    "customerPhone",
    "customerComment",
    "source",
    "channel",
    "createdAt",
    "updatedAt",
    "resolvedAt",
    "responseId",
    "surveyToken",
    "QueuePosition",  # the waiting room (store.waiting): 3; empty when not waiting
    "EstimatedWait",  # "about 15 minutes", "not known yet"; empty when not waiting
)
# The desk-wide figures ``${desk://<name>}`` may name (scheduled workflows: since their last run).
DESK_FIELDS = (
    "Since",  # the last run, desk time: 2026-12-06 18:00
    "Until",  # this run
    "TicketsCreated",  # since the last run
    "TicketsResolved",
    "TicketsOpen",  # now, not resolved or closed
    "TicketsWaiting",  # now, open and in a queue (no owner)
    "TicketsCreatedToday",  # the desk's day (its time zone) so far
    "TicketsResolvedToday",
    "Teams",  # one line per team: created and resolved since the last run, open now
    "CsatToday",  # "92% satisfied, 4.6 of 5 (12 answers)" or "no answers"
    "SlaBreaches",  # one line per SLA breach since the last run, or "none"
)
# The desk's survey base URL (a setting, not piped data) is put in before the template is
# read, so the link it starts counts as a URL and the values piped into it are encoded.
SURVEY_URL = "${e://Field/surveyUrl}"


@dataclass
class PipeContext:
    """The values a template may pipe from, gathered by the engine for one event."""

    ticket: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, str] = field(default_factory=dict)
    answers: Mapping[str, object] = field(default_factory=dict)
    embedded: Mapping[str, str] = field(default_factory=dict)
    desk: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, namespace: str, name: str) -> str:
        source: Mapping[str, object]
        if namespace == "tck://Field/":
            source = self.ticket
        elif namespace == "tck://kv/":
            source = self.data
        elif namespace == "q://":
            source = self.answers
        elif namespace == "e://Field/":
            source = self.embedded
        elif namespace == "desk://":
            source = self.desk
        else:
            return ""
        value = source.get(name)
        return "" if value is None else str(value)


Piece = tuple[str | None, str, str, bool]
"""A template's piece: its text (None: a placeholder), the placeholder's namespace and name,
and whether it stands inside a URL."""


@lru_cache(maxsize=512)
def _pieces(template: str) -> tuple[Piece, ...]:
    """``template`` split once into text and placeholders (templates are the desk's own: a
    check-in renders the same dozen again and again)."""
    pieces: list[Piece] = []

    def scan(text: str, in_url: bool) -> None:
        position = 0
        for match in PLACEHOLDER.finditer(text):
            if match.start() > position:
                pieces.append((text[position : match.start()], "", "", in_url))
            pieces.append((None, match.group(1), match.group(2), in_url))
            position = match.end()
        if position < len(text):
            pieces.append((text[position:], "", "", in_url))

    position = 0
    for match in URL.finditer(template):
        scan(template[position : match.start()], False)
        scan(match.group(0), True)
        position = match.end()
    scan(template[position:], False)
    return tuple(pieces)


def render(template: str, context: PipeContext, *, header: bool = False) -> str:
    """Fill the placeholders of ``template``; values inside URLs are percent-encoded."""
    if SURVEY_URL in template:
        template = template.replace(SURVEY_URL, context.lookup("e://Field/", "surveyUrl"))
    filled: list[str] = []
    for text, namespace, name, in_url in _pieces(template):
        if text is not None:
            filled.append(text)
            continue
        value = context.lookup(namespace, name)
        if in_url:
            filled.append(quote(value, safe=""))
        else:
            filled.append(" ".join(value.splitlines()) if header else value)
    text = "".join(filled)
    if header:
        text = text.replace("\r", " ").replace("\n", " ")
    return text


def template_problems(template: str, *, questions: Iterable[str] | None = None) -> list[str]:
    """Unknown or malformed placeholders in ``template`` (empty when it is fine).

    ``questions``: the answer ids ``${q://...}`` may use, when the survey is known.
    """
    problems: list[str] = []
    known_questions = set(questions) if questions is not None else None
    for match in ANY_PLACEHOLDER.finditer(template):
        placeholder = match.group(0)
        parsed = PLACEHOLDER.fullmatch(placeholder)
        if parsed is None or parsed.group(1) not in NAMESPACES or not parsed.group(2):
            problems.append(f"unknown placeholder {placeholder}")
            continue
        namespace, name = parsed.group(1), parsed.group(2)
        if namespace == "tck://Field/" and name not in TICKET_FIELDS:
            problems.append(f"unknown ticket field in {placeholder}")
        elif namespace == "desk://" and name not in DESK_FIELDS:
            problems.append(f"unknown desk figure in {placeholder}")
        elif namespace == "q://" and known_questions is not None and name not in known_questions:
            problems.append(f"unknown question in {placeholder}")
    return problems


def check_template(name: str, template: str, *, questions: Iterable[str] | None = None) -> None:
    """Raise ValidationFailed naming ``name`` when the template has a bad placeholder."""
    problems = template_problems(template, questions=questions)
    if problems:
        raise ValidationFailed({name: "; ".join(problems)})
